resource "google_artifact_registry_repository" "images" {
  repository_id = "cmbcluster"
  location      = var.region
  format        = "DOCKER"
  description   = "Control-plane (functions) and user-environment images"

  cleanup_policies {
    id     = "keep-recent"
    action = "KEEP"
    most_recent_versions {
      keep_count = 20
    }
  }
}

locals {
  registry = "${var.region}-docker.pkg.dev/${var.project_id}/${google_artifact_registry_repository.images.repository_id}"
}
