# The controller image: a static-enough release build on Debian, run as non-root on distroless.
FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked -p booster-bin \
 && cp target/release/aws-spots-booster /aws-spots-booster

FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /aws-spots-booster /usr/local/bin/aws-spots-booster
USER 65532:65532
EXPOSE 2112
ENTRYPOINT ["/usr/local/bin/aws-spots-booster"]
