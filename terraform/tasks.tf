resource "google_project_service" "cloudtasks" {
  service            = "cloudtasks.googleapis.com"
  disable_on_destroy = false
}

# The spawn queue. The rate limits are the point: a burst of launches (a class starting
# a tutorial together) reaches the Kubernetes API at a steady pace instead of at once.
resource "google_cloud_tasks_queue" "spawn" {
  name     = "cmbcluster-spawn"
  location = var.region

  rate_limits {
    max_dispatches_per_second = var.spawn_rate_per_second
    max_concurrent_dispatches = var.spawn_max_concurrent
  }

  # A worker that died mid-start is retried; every spawn step is idempotent. Past the
  # start timeout the reconciler fails the environment, so retrying longer is pointless.
  retry_config {
    max_attempts       = 5
    min_backoff        = "5s"
    max_backoff        = "60s"
    max_retry_duration = "600s"
  }

  stackdriver_logging_config {
    sampling_ratio = 1.0
  }

  depends_on = [google_project_service.cloudtasks]
}
