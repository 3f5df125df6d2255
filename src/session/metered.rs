//! A store that counts: every call of the store it wraps is timed and its failures counted, by
//! operation, in `/metrics` (`baton_store_call_duration_seconds`, `baton_store_errors_total`).
//! A wrapper rather than code in each backend, so that every backend, present or future, is
//! measured the same way.

use std::future::Future;
use std::sync::Arc;
use std::time::Instant;

use async_trait::async_trait;

use super::{
    AdoptOutcome, IdHash, Jti, Session, SessionStore, SetOutcome, StoreError, SubjectHash, Uid,
};
use crate::clock::Timestamp;
use crate::metrics::Metrics;

pub struct Metered {
    inner: Arc<dyn SessionStore>,
    metrics: Arc<Metrics>,
}

impl Metered {
    pub fn new(inner: Arc<dyn SessionStore>, metrics: Arc<Metrics>) -> Self {
        Self { inner, metrics }
    }

    async fn timed<T>(
        &self,
        op: &'static str,
        call: impl Future<Output = Result<T, StoreError>>,
    ) -> Result<T, StoreError> {
        let started = Instant::now();
        let result = call.await;
        self.metrics
            .store_call(op, started.elapsed(), result.is_err());
        result
    }
}

#[async_trait]
impl SessionStore for Metered {
    async fn create(&self, id: &IdHash, now: Timestamp) -> Result<Session, StoreError> {
        self.timed("create", self.inner.create(id, now)).await
    }

    async fn load(&self, id: &IdHash, now: Timestamp) -> Result<Option<Session>, StoreError> {
        self.timed("load", self.inner.load(id, now)).await
    }

    async fn set_value(
        &self,
        uid: &Uid,
        key: &str,
        value: &str,
        now: Timestamp,
        max_values: usize,
    ) -> Result<SetOutcome, StoreError> {
        let call = self.inner.set_value(uid, key, value, now, max_values);
        self.timed("set_value", call).await
    }

    async fn load_and_set(
        &self,
        id: &IdHash,
        key: &str,
        value: &str,
        now: Timestamp,
        max_values: usize,
    ) -> Result<Option<SetOutcome>, StoreError> {
        let call = self.inner.load_and_set(id, key, value, now, max_values);
        self.timed("load_and_set", call).await
    }

    async fn remove_value(
        &self,
        uid: &Uid,
        key: &str,
        now: Timestamp,
    ) -> Result<Option<Session>, StoreError> {
        let call = self.inner.remove_value(uid, key, now);
        self.timed("remove_value", call).await
    }

    async fn end(&self, uid: &Uid) -> Result<(), StoreError> {
        self.timed("end", self.inner.end(uid)).await
    }

    async fn bind(&self, uid: &Uid, id: &IdHash, now: Timestamp) -> Result<bool, StoreError> {
        self.timed("bind", self.inner.bind(uid, id, now)).await
    }

    async fn adopt(
        &self,
        uid: &Uid,
        id: &IdHash,
        reached: &[IdHash],
        now: Timestamp,
    ) -> Result<AdoptOutcome, StoreError> {
        let call = self.inner.adopt(uid, id, reached, now);
        self.timed("adopt", call).await
    }

    async fn put_handoff(
        &self,
        jti: &Jti,
        uid: &Uid,
        expires_at: Timestamp,
    ) -> Result<(), StoreError> {
        let call = self.inner.put_handoff(jti, uid, expires_at);
        self.timed("put_handoff", call).await
    }

    async fn take_handoff(&self, jti: &Jti, now: Timestamp) -> Result<Option<Uid>, StoreError> {
        self.timed("take_handoff", self.inner.take_handoff(jti, now))
            .await
    }

    async fn load_identity(
        &self,
        subject: &SubjectHash,
        now: Timestamp,
    ) -> Result<Option<Session>, StoreError> {
        let call = self.inner.load_identity(subject, now);
        self.timed("load_identity", call).await
    }

    async fn link_identity(
        &self,
        subject: &SubjectHash,
        uid: &Uid,
        now: Timestamp,
    ) -> Result<bool, StoreError> {
        let call = self.inner.link_identity(subject, uid, now);
        self.timed("link_identity", call).await
    }

    async fn detach(&self, uid: &Uid) -> Result<(), StoreError> {
        self.timed("detach", self.inner.detach(uid)).await
    }

    async fn ping(&self) -> Result<(), StoreError> {
        self.timed("ping", self.inner.ping()).await
    }

    async fn sweep(&self, now: Timestamp) -> Result<u64, StoreError> {
        self.timed("sweep", self.inner.sweep(now)).await
    }

    async fn close(&self) {
        self.inner.close().await;
    }
}
