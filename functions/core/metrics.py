"""Prometheus metrics, named as in the original CMBCluster README."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

REGISTRY = CollectorRegistry(auto_describe=True)

active_users = Gauge("cmbcluster_active_users",
                     "Users with at least one active environment", registry=REGISTRY)
active_environments = Gauge("cmbcluster_active_environments",
                            "Environments by state", ["state"], registry=REGISTRY)
pods_created = Counter("cmbcluster_pods_created_total",
                       "Environment servers created", ["profile"], registry=REGISTRY)
authentication_requests = Counter("cmbcluster_authentication_requests_total",
                                  "Sign-in attempts by result", ["result"], registry=REGISTRY)
culled = Counter("cmbcluster_culled_total", "Environments stopped by the culler",
                 ["reason"], registry=REGISTRY)
cpu_usage = Gauge("cmbcluster_cpu_usage", "CPU seconds used by an environment",
                  ["environment"], registry=REGISTRY)
memory_usage = Gauge("cmbcluster_memory_usage", "Resident memory of an environment (bytes)",
                     ["environment"], registry=REGISTRY)
storage_usage = Gauge("cmbcluster_storage_usage", "Workspace size of a user (bytes)",
                      ["user"], registry=REGISTRY)
spawn_phase_seconds = Histogram(
    "cmbcluster_spawn_phase_seconds", "Time from the spawn request to each phase",
    ["phase"], registry=REGISTRY,
    buckets=(0.1, 0.25, 0.5, 1, 1.5, 2, 3, 5, 10, 20, 30, 60, 120, 300),
)


def exposition() -> bytes:
    return generate_latest(REGISTRY)
