# Hallmark service image. Build: docker build -t hallmark .
# Laid out like `make install PREFIX=/usr/local`: /usr/local/bin/hallmark, the registries and
# models under /usr/local/share/hallmark, ONNX Runtime under /usr/local/lib; the binary finds
# them next to itself, so no path settings are needed.
FROM rust:1.95-bookworm AS build
WORKDIR /src
RUN apt-get update && apt-get install -y --no-install-recommends python3-pip unzip libopus-dev && rm -rf /var/lib/apt/lists/*
COPY . .
RUN scripts/fetch-onnxruntime.sh && scripts/fetch-models.sh \
    && cargo build --release --bin hallmark \
    && scripts/install.sh --bin target/release/hallmark /opt/hallmark-prefix

FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates ffmpeg libopus0 espeak-ng-data espeak-ng && rm -rf /var/lib/apt/lists/* \
    && useradd --system --home /var/lib/hallmark hallmark && mkdir -p /var/lib/hallmark/data && chown -R hallmark /var/lib/hallmark
WORKDIR /var/lib/hallmark
COPY --from=build /opt/hallmark-prefix/ /usr/local/
ENV HALLMARK__SERVER__HOST=0.0.0.0 \
    HALLMARK__SERVER__PORT=8080 \
    HALLMARK__STORAGE__DATA_DIR=/var/lib/hallmark/data
USER hallmark
EXPOSE 8080
ENTRYPOINT ["hallmark"]
CMD ["serve"]
