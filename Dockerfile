# wa-sip-gateway: multi-stage build on Debian (bookworm) with Node 22 LTS; the code also runs on Node 20.
# Build:  docker build -t wa-sip-gateway .
# Run:    docker run --network host -e WAGW_APP_SECRET=… -e WAGW_GRAPH_TOKEN=… -e WAGW_VERIFY_TOKEN=… wa-sip-gateway
# drachtio-server runs beside it (its own image, drachtio/drachtio-server); point sip.drachtioHost at it.

FROM node:22-bookworm-slim AS build
WORKDIR /app
# better-sqlite3 compiles its native addon when no prebuilt binary can be fetched; our batched UDP addon
# (native/udp_batch.c) is compiled by npm's install step against the image's own Node headers.
RUN apt-get update && apt-get install -y --no-install-recommends python3 make g++ && rm -rf /var/lib/apt/lists/*
ENV npm_config_nodedir=/usr/local
COPY package.json package-lock.json .npmrc binding.gyp ./
COPY native ./native
COPY scripts/build-native.mjs ./scripts/
RUN npm ci && test -f build/Release/udp_batch.node
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
RUN npx tsc -p tsconfig.build.json && npm prune --omit=dev

FROM node:22-bookworm-slim
ENV NODE_ENV=production
WORKDIR /app
# libopus0: the media addon opens libopus.so.0 at run time to decode WhatsApp's Opus with FEC/PLC natively
# (native/opus_fec.c); without it that decoding falls back to the slower WebAssembly build.
RUN apt-get update && apt-get install -y --no-install-recommends libopus0 && rm -rf /var/lib/apt/lists/*
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
COPY --from=build /app/build/Release/udp_batch.node ./build/Release/
COPY package.json ./
COPY config ./config
# Default hold music (src/calls/hold-music.ts looks for assets/ at the package root).
COPY assets ./assets
RUN mkdir -p /app/data && chown node:node /app/data
USER node
# 8080/tcp: webhooks, /healthz, /readyz, /metrics.
# 20000-24999/udp: plain RTP toward the PBX. 25000-29999/udp: ICE + DTLS-SRTP toward WhatsApp (both below
# the kernel's ephemeral range, so outgoing connections never hold a media port).
EXPOSE 8080/tcp 20000-29999/udp
VOLUME ["/app/data"]
HEALTHCHECK --interval=10s --timeout=3s --start-period=10s --retries=3 \
  CMD node -e "fetch('http://127.0.0.1:'+(process.env.WAGW_HTTP_PORT||8080)+'/healthz').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"
STOPSIGNAL SIGTERM
CMD ["node", "dist/src/main.js"]
