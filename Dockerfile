# syntax=docker/dockerfile:1
# The gateway image. Its default config serves the bundled demo models from models/ (no S3 needed);
# docker-compose.yml and deploy/k8s point GATEWAY_CONFIG at an S3 model list instead.
#   docker build -t nlp-gateway .
#   docker run --rm -p 8080:8080 nlp-gateway

ARG NODE_IMAGE=node:20-bookworm-slim

# ---- production dependencies only ----
FROM ${NODE_IMAGE} AS deps
WORKDIR /app
COPY package.json package-lock.json .npmrc ./
# .npmrc sets onnxruntime-node-install=skip: the CPU binaries ship inside the npm package and nothing
# else is downloaded. tsx is a production dependency: it runs the TypeScript sources (no build step).
# ONNX Runtime ships binaries for every OS; this image only needs Linux's (saves ~220 MB).
RUN npm ci --omit=dev --no-audit --no-fund \
 && npm cache clean --force \
 && rm -rf node_modules/onnxruntime-node/bin/napi-v*/darwin node_modules/onnxruntime-node/bin/napi-v*/win32

# ---- runtime ----
FROM ${NODE_IMAGE} AS runtime
LABEL org.opencontainers.image.title="nlp-gateway" \
      org.opencontainers.image.description="Multi-model NLP inference gateway (QA, similarity, essays, classification) on ONNX Runtime" \
      org.opencontainers.image.licenses="Apache-2.0"
WORKDIR /app
ENV PORT=8080 \
    HOST=0.0.0.0 \
    GATEWAY_STORE__DIR=/var/cache/gateway \
    GATEWAY_COLLECTIONS__DIR=/var/lib/gateway/collections
COPY --from=deps /app/node_modules ./node_modules
COPY package.json package-lock.json .npmrc tsconfig.json ./
COPY src ./src
COPY config ./config
COPY web ./web
# The demo models, for the embedded default (config/default.json lists them by local path).
COPY models ./models
# So the image can publish models and lay out a Triton model repository too (the compose jobs run these).
COPY scripts/publish-model.ts scripts/triton-repository.ts ./scripts/
# The gateway writes in two places only: the unpacked-model cache (safe to lose) and the collections file
# of the embedded store (users' data: mount a volume on /var/lib/gateway). Everything else stays root-owned.
RUN mkdir -p /var/cache/gateway /var/lib/gateway/collections && chown node:node /var/cache/gateway /var/lib/gateway /var/lib/gateway/collections
USER node
EXPOSE 8080
STOPSIGNAL SIGTERM
# Liveness only: readiness (all required models loaded) is /health/ready, for load balancers.
HEALTHCHECK --interval=10s --timeout=3s --start-period=30s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:'+(process.env.PORT||8080)+'/health/live',{signal:AbortSignal.timeout(2500)}).then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"]
# The same command as `npm start` and as the tests (test/helpers/gateway-process.ts). Node runs as PID 1
# without a shell in between, so SIGTERM reaches the gateway's own handler (drain, then exit 0).
CMD ["node", "--import", "tsx", "src/server.ts"]
