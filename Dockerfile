# Hallmark service image. Build: docker build -t hallmark .
FROM rust:1.95-bookworm AS build
WORKDIR /src
RUN apt-get update && apt-get install -y --no-install-recommends python3-pip unzip && rm -rf /var/lib/apt/lists/*
COPY . .
RUN scripts/fetch-onnxruntime.sh && cargo build --release --bin hallmark

FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates ffmpeg && rm -rf /var/lib/apt/lists/* \
    && useradd --system --home /var/lib/hallmark hallmark && mkdir -p /var/lib/hallmark/data && chown -R hallmark /var/lib/hallmark
WORKDIR /var/lib/hallmark
COPY --from=build /src/target/release/hallmark /usr/local/bin/hallmark
COPY --from=build /src/.runtime/onnxruntime /opt/onnxruntime
COPY --from=build /src/detectors/models /opt/hallmark/models
COPY --from=build /src/generators/models /opt/hallmark/generators
ENV HALLMARK__SERVER__HOST=0.0.0.0 \
    HALLMARK__SERVER__PORT=8080 \
    HALLMARK__STORAGE__DATA_DIR=/var/lib/hallmark/data \
    HALLMARK__DETECTORS__REGISTRY=/opt/hallmark/models/registry.toml \
    HALLMARK__GENERATORS__REGISTRY=/opt/hallmark/generators/registry.toml \
    ORT_DYLIB_PATH=/opt/onnxruntime/libonnxruntime.so.1.31.1
USER hallmark
EXPOSE 8080
ENTRYPOINT ["hallmark"]
CMD ["serve"]
