# One image for every Python component of the platform: the Airflow components, the MLflow
# tracking server, serving and the local AWS endpoint (moto). See docker-compose.yaml.
#
# Packages come from a wheelhouse built on the host from the lock (make image does it):
#   pip wheel -r requirements.lock -w wheels/
#   docker build --build-arg GIT_COMMIT=$(git rev-parse HEAD) --build-arg BUILD_TIME=$(date -u +%FT%TZ) .
# Where python:3.11-slim-bookworm cannot be pulled, docker/build-base.sh makes a base from Debian's
# packages: --build-arg BASE_IMAGE=modelops-base:bookworm.
ARG BASE_IMAGE=python:3.11-slim-bookworm

# The venv is built in a stage of its own so the wheelhouse (~300 MB) never becomes a layer of
# the final image.
FROM ${BASE_IMAGE} AS venv
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 PYTHONDONTWRITEBYTECODE=1
COPY requirements.lock docker/requirements-bookworm.txt /build/
COPY wheels /build/wheels
RUN python3 -m venv /opt/venv \
 && /opt/venv/bin/pip install --quiet --no-index --find-links /build/wheels \
      -r /build/requirements.lock -r /build/requirements-bookworm.txt \
 && /opt/venv/bin/pip check

FROM ${BASE_IMAGE}
ARG GIT_COMMIT=unknown
ARG BUILD_TIME=unknown
LABEL org.opencontainers.image.title="modelops" \
      org.opencontainers.image.description="modelops platform: Airflow, MLflow, serving and the local AWS endpoint" \
      org.opencontainers.image.revision="${GIT_COMMIT}" \
      org.opencontainers.image.created="${BUILD_TIME}"

# uid 50000 and group 0, as Airflow's own image: files created in mounted volumes stay writable
# by a container running with an arbitrary uid in group 0 (OpenShift-style platforms).
# LightGBM links the system's OpenMP runtime, which python:3.11-slim lacks (docker/build-base.sh's
# base has it, so no network is needed there).
RUN if ! ldconfig -p | grep -q 'libgomp.so.1 '; then \
      apt-get update && apt-get install -y --no-install-recommends libgomp1 && rm -rf /var/lib/apt/lists/*; \
    fi
RUN useradd --uid 50000 --gid 0 --home-dir /opt/airflow --create-home --shell /bin/bash modelops \
 && mkdir -p /opt/modelops /opt/airflow/logs /var/lib/modelops/aws \
 && chown -R 50000:0 /opt/airflow /var/lib/modelops && chmod -R g+rwX /opt/airflow /var/lib/modelops

COPY --from=venv /opt/venv /opt/venv
COPY docker/entrypoint.sh /usr/local/bin/modelops-entrypoint
COPY docker/http_ok.py /usr/local/bin/modelops-http-ok
COPY dags /opt/modelops/dags
COPY plugins /opt/modelops/plugins
COPY include /opt/modelops/include
COPY expectations /opt/modelops/expectations
RUN chmod 0755 /usr/local/bin/modelops-entrypoint /usr/local/bin/modelops-http-ok \
 && /opt/venv/bin/python -c "import lightgbm, xgboost, sklearn"  # every candidate family loads

ENV PATH=/opt/venv/bin:$PATH \
    PYTHONPATH=/opt/modelops/include:/opt/modelops/plugins \
    PYTHONUNBUFFERED=1 \
    LANG=C.UTF-8 \
    AIRFLOW_HOME=/opt/airflow \
    AIRFLOW__CORE__DAGS_FOLDER=/opt/modelops/dags \
    AIRFLOW__CORE__PLUGINS_FOLDER=/opt/modelops/plugins \
    AIRFLOW__CORE__LOAD_EXAMPLES=False \
    MODELOPS_CODE_VERSION=${GIT_COMMIT} \
    MODELOPS_BUILD_TIME=${BUILD_TIME}

USER 50000:0
WORKDIR /opt/airflow
ENTRYPOINT ["/usr/local/bin/modelops-entrypoint"]
CMD ["bash"]
