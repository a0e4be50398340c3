# One identity per caller, each with only what it calls.

resource "google_service_account" "functions" {
  account_id   = "cmbcluster-functions"
  display_name = "CMBCluster control plane (Cloud Run functions)"
}

resource "google_service_account" "tasks" {
  account_id   = "cmbcluster-tasks"
  display_name = "CMBCluster Cloud Tasks caller (spawn)"
}

resource "google_service_account" "scheduler" {
  account_id   = "cmbcluster-scheduler"
  display_name = "CMBCluster Cloud Scheduler caller (cull)"
}

resource "google_service_account" "nodes" {
  account_id   = "cmbcluster-nodes"
  display_name = "CMBCluster GKE nodes"
}

resource "google_project_iam_member" "functions" {
  for_each = toset([
    "roles/datastore.user",      # session records
    "roles/cloudtasks.enqueuer", # spawn tasks
    "roles/logging.logWriter",
    "roles/monitoring.metricWriter",
    # Cluster metadata only (get credentials). What it may do inside the cluster is the
    # namespaced RBAC Role in kubernetes.tf, nothing more.
    "roles/container.clusterViewer",
  ])
  project = var.project_id
  role    = each.value
  member  = "serviceAccount:${google_service_account.functions.email}"
}

# Creating a task with an OIDC token for the tasks account needs actAs on it.
resource "google_service_account_iam_member" "functions_act_as_tasks" {
  service_account_id = google_service_account.tasks.name
  role               = "roles/iam.serviceAccountUser"
  member             = "serviceAccount:${google_service_account.functions.email}"
}

resource "google_project_iam_member" "nodes" {
  for_each = toset([
    "roles/logging.logWriter",
    "roles/monitoring.metricWriter",
    "roles/artifactregistry.reader",
  ])
  project = var.project_id
  role    = each.value
  member  = "serviceAccount:${google_service_account.nodes.email}"
}

resource "google_secret_manager_secret" "secret_key" {
  secret_id = "cmbcluster-secret-key"
  replication {
    auto {}
  }
}

resource "google_secret_manager_secret" "oidc_client_secret" {
  secret_id = "cmbcluster-oidc-client-secret"
  replication {
    auto {}
  }
}

# Values are added out of band, never in state:
#   python -c 'import secrets; print(secrets.token_urlsafe(48))' | \
#     gcloud secrets versions add cmbcluster-secret-key --data-file=-
resource "google_secret_manager_secret_iam_member" "functions" {
  for_each  = { key = google_secret_manager_secret.secret_key.id, oidc = google_secret_manager_secret.oidc_client_secret.id }
  secret_id = each.value
  role      = "roles/secretmanager.secretAccessor"
  member    = "serviceAccount:${google_service_account.functions.email}"
}
