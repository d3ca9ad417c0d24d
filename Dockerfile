# indigo-loadtest as a container image: `indigo-loadtest` is the entrypoint, /loadtest the
# working folder with scenarios/ (mount yours; the built-ins are used when it is empty) and
# results/ (mount it to keep the results). All configuration through environment
# variables (BASE, MODEL, API_KEY, ...) or a mounted /loadtest/.env. See docs/container.md.
#
#   container/build-image.sh                      # offline: wheels/ built on the host first
#   docker build -t indigo-loadtest .             # from source (needs PyPI)
#   docker run --rm -e SINGLE_RUN=true indigo-loadtest run test-completion-standard
#
# BASE_IMAGE: any image with python3 (>= 3.11, with venv) and useradd. CI builds one from
# Debian packages (container/build-image.sh --debian-base), users get the official slim one.
ARG BASE_IMAGE=python:3.11-slim

FROM ${BASE_IMAGE} AS build
# Marks the build stage's leftover image for container/build-image.sh to remove.
LABEL org.indigo-loadtest.stage=build
COPY . /src
# From the wheelhouse when one was built (no index: nothing is downloaded), else from source.
# pip and setuptools leave the venv afterwards: the image never installs anything at run time.
RUN python3 -m venv /opt/indigo-loadtest \
 && if ls /src/wheels/indigo_loadtest-*.whl >/dev/null 2>&1; then \
      /opt/indigo-loadtest/bin/pip install -q --no-cache-dir --no-index \
        --find-links /src/wheels indigo-loadtest; \
    else \
      /opt/indigo-loadtest/bin/pip install -q --no-cache-dir /src; \
    fi \
 && /opt/indigo-loadtest/bin/python -m pip uninstall -q -y pip setuptools \
 && /opt/indigo-loadtest/bin/indigo-loadtest --version

FROM ${BASE_IMAGE}
# uid 1000: on a rootful Docker host the results belong to the usual first user; any other
# uid works with `--user "$(id -u):$(id -g)"` (or podman's --userns=keep-id).
RUN useradd --no-log-init --uid 1000 --user-group --create-home loadtest \
 && mkdir -p /loadtest/scenarios /loadtest/results \
 && chown loadtest:loadtest /loadtest /loadtest/scenarios /loadtest/results \
 && chmod 1777 /loadtest/scenarios /loadtest/results
COPY --from=build /opt/indigo-loadtest /opt/indigo-loadtest
ENV PATH=/opt/indigo-loadtest/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1
WORKDIR /loadtest
USER 1000:1000
ENTRYPOINT ["indigo-loadtest"]
# As the old image did: every scenario in turn (mounted ones, else the built-ins).
CMD ["run", "--all"]
