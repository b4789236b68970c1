# syntax=docker/dockerfile:1
# Darwin ML Serve: one self-contained executable (`bun build --compile`, the artefact CI smoke-tests
# as dist/darwin-ml-serve) on distroless base-nossl: glibc only (the binary links nothing else:
# libc, libpthread, libdl, libm; TLS is built into Bun), no shell, no package manager.

# --- build: install exactly the lockfile, compile, lay out /app ---------------------------------
FROM node:22-bookworm-slim AS build
WORKDIR /src
COPY package.json package-lock.json ./
# Bun itself is a pinned devDependency, so the lockfile fixes the compiler too.
RUN npm ci --no-audit --no-fund --loglevel=error
COPY . .
RUN npm run build

# --- runtime --------------------------------------------------------------------------------------
FROM gcr.io/distroless/base-nossl-debian12:nonroot
WORKDIR /app
# The binary carries its migrations, templates and docs assets; TEMPLATES_DIR / MIGRATIONS_DIR may
# point at a mounted volume to override them.
COPY --from=build --chown=nonroot:nonroot /src/dist/darwin-ml-serve /app/darwin-ml-serve
ENV ENV=prod \
    PORT=8007
USER nonroot
EXPOSE 8007
# No curl in distroless: the binary checks its own /healthcheck.
HEALTHCHECK --interval=15s --timeout=5s --start-period=10s --retries=3 CMD ["/app/darwin-ml-serve", "healthcheck"]
ENTRYPOINT ["/app/darwin-ml-serve"]
CMD ["serve"]
