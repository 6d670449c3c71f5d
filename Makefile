# The two commands (README.md): `make dev` runs the Worker locally, `make test` runs every test.
.PHONY: dev test bench fuzz build clean deploy

dev:
	bash scripts/dev.sh

test:
	bash scripts/test.sh

deploy:
	bash scripts/deploy.sh

build:
	bash scripts/bootstrap.sh && bash scripts/build.sh && bash scripts/wasm-size.sh

bench:
	bash scripts/bootstrap.sh && cargo run --release -q -p tiktok-bench

fuzz:
	bash scripts/fuzz.sh

clean:
	rm -rf build target/dry-run .wrangler
