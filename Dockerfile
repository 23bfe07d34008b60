# The repast image: the feature server (`repast serve`), the materialization CronJob, Kubeflow
# pipeline steps and the KServe transformer all run it.
#   docker build -t repast:0.1.0 .
#   docker build --build-arg EXTRAS=server,postgres,redis,kubeflow,kserve -t repast-kserve:0.1.0 .
# The configuration is mounted at /etc/repast/feature_store.yaml (the deploy/ manifests do it).
FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY repast ./repast
ARG EXTRAS=server,postgres,redis,kubeflow
RUN pip wheel --no-cache-dir --wheel-dir /wheels ".[${EXTRAS}]"

FROM python:3.11-slim
RUN groupadd --gid 10001 repast \
 && useradd --uid 10001 --gid 10001 --no-create-home --home-dir /tmp --shell /usr/sbin/nologin repast
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir --no-index /wheels/*.whl && rm -rf /wheels
# Read-only root filesystem in Kubernetes: no bytecode writes; /tmp is an emptyDir there.
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    HOME=/tmp \
    REPAST_FEATURE_STORE_YAML=/etc/repast/feature_store.yaml
# `repast serve` reads feature_store.yaml from the working directory: the mounted Secret.
WORKDIR /etc/repast
USER 10001:10001
EXPOSE 6566
ENTRYPOINT ["repast", "serve"]
CMD ["--host", "0.0.0.0", "--port", "6566"]
