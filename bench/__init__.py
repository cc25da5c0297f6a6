"""Benchmarks on real Kafka and Postgres; `make bench` runs them and writes JSON to bench/results/."""
