resource "google_cloud_scheduler_job" "cull" {
  name             = "cmbcluster-cull"
  region           = var.region
  description      = "Stop idle environments and reconcile records with pods"
  schedule         = "*/5 * * * *"
  time_zone        = "Etc/UTC"
  attempt_deadline = "300s"

  retry_config {
    retry_count = 0 # the next run is five minutes away
  }

  http_target {
    http_method = "POST"
    uri         = "${local.run_url.cull}/cull"
    oidc_token {
      service_account_email = google_service_account.scheduler.email
      audience              = local.run_url.cull
    }
  }
}
