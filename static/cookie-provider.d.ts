// placeholder until npm run build
