# podvisor container image.
#
#   docker build -t podvisor .                          # with a registry: node:20-bookworm-slim
#   eval "$(test/support/base-image.sh)"                # without one: local bookworm + this machine's node
#   docker build --network host --build-arg BUILD_IMAGE=$BUILD_IMAGE --build-arg RUNTIME_IMAGE=$RUNTIME_IMAGE -t podvisor .
#
# Works with the classic builder and BuildKit (no RUN --mount). See DEVELOPERS.md, "Container image".
ARG BUILD_IMAGE=node:20-bookworm-slim
ARG RUNTIME_IMAGE=node:20-bookworm-slim

# ---------------------------------------------------------------- production node_modules
# Only package*.json: this layer is rebuilt when the lockfile changes, not when src/ does.
# --ignore-scripts: no install script is needed at run time (the optional native addons of
# ssh2/cpu-features fall back to JavaScript; dockerode talks to a unix socket).
FROM ${BUILD_IMAGE} AS deps
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund \
 && rm -rf /root/.npm

# ---------------------------------------------------------------- dist/
FROM ${BUILD_IMAGE} AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --ignore-scripts --no-audit --no-fund \
 && rm -rf /root/.npm
COPY tsconfig.json ./
COPY src ./src
RUN npm run build

# ---------------------------------------------------------------- runtime
FROM ${RUNTIME_IMAGE} AS runtime
# tini as PID 1, node as its child:
# - the kernel gives PID 1 no default signal actions: node as PID 1 ignores a SIGTERM that arrives before
#   main.ts installs its handler (measured: `docker kill -s TERM` right after start left it running;
#   under tini it exits at once, 143), and the stop then waits out the grace period for SIGKILL;
# - orphans are re-parented to PID 1, and node reaps only the children it spawned: systeminformation runs
#   `lscpu`, `cat`, `grep` through /bin/sh, and a shell killed mid-way (say by the OOM killer under the
#   memory limit) leaves them to PID 1, where they would stay zombies.
# tini forwards SIGTERM/SIGINT to node and exits with node's status (0 after a graceful shutdown).
# util-linux provides lscpu: without it machine_cpu_sockets/physical_cores are wrong.
# No package manager for node at run time: npm, npx, corepack and yarn are removed if the base has them.
RUN set -eu; \
    if ! command -v tini >/dev/null || ! command -v lscpu >/dev/null; then \
      apt-get update; \
      DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends tini util-linux; \
      apt-get clean; rm -rf /var/lib/apt/lists/*; \
    fi; \
    rm -rf /usr/local/lib/node_modules /usr/lib/node_modules /opt/yarn-* \
      /usr/local/bin/npm /usr/local/bin/npx /usr/local/bin/corepack /usr/local/bin/yarn /usr/local/bin/yarnpkg \
      /usr/bin/npm /usr/bin/npx /usr/bin/corepack; \
    command -v node >/dev/null; command -v lscpu >/dev/null; test -x /usr/bin/tini
WORKDIR /app
COPY --from=deps /app/node_modules ./node_modules
COPY package.json ./
COPY proto ./proto
COPY --from=build /app/dist ./dist

# Keep VERSION's default at package.json's version (test/e2e/image.test.ts checks it).
ARG VERSION=0.1.0
ARG REVISION=unknown
LABEL org.opencontainers.image.title="podvisor" \
      org.opencontainers.image.description="A cAdvisor-compatible container metrics exporter for Kubernetes nodes" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}"

ENV NODE_ENV=production
# glibc keeps up to 8 malloc arenas per core, one per thread that allocates (V8's platform threads, libuv's pool,
# the disk walker's thread); freed memory stays in them. Two arenas: RSS at rest 78 MiB instead of 149 MiB at 200
# containers (bench/results), same scrape latency.
ENV MALLOC_ARENA_MAX=2
# Root: reading every process's /proc/<pid>/fd and the runtimes' sockets needs it (the DaemonSet says
# runAsUser: 0 and drops every capability it does not need). Nothing is written: runs with --read-only.
USER 0:0
EXPOSE 8080
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/bin/tini", "-s", "--", "node", "/app/dist/main.js"]
