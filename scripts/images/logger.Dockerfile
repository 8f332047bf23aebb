# The end-to-end tests' log-writing pod (logger.sh on Debian's base).
ARG DEBIAN_IMAGE
FROM ${DEBIAN_IMAGE}
COPY logger.sh /usr/local/bin/logpipe-test-logger
ENTRYPOINT ["/usr/local/bin/logpipe-test-logger"]
