# Five Cloud Run services from one image; FUNCTION_TARGET picks the function.

locals {
  functions = {
    auth  = { public = true, kubernetes = false, timeout = "30s" }
    spawn = { public = true, kubernetes = true, timeout = "900s" }  # the worker waits for health
    route = { public = true, kubernetes = false, timeout = "10s" }  # ingress-nginx auth-url
    cull  = { public = false, kubernetes = true, timeout = "300s" } # Cloud Scheduler only
    admin = { public = true, kubernetes = true, timeout = "60s" }
  }
  public_url = "https://${var.base_domain}"
  apps_host  = var.apps_domain == "" ? var.base_domain : "{env_id}.${var.apps_domain}"
  # Deterministic Cloud Run URLs, so services can name each other without a cycle.
  run_url = { for name, _ in local.functions : name => "https://cmbcluster-${name}-${data.google_project.current.number}.${var.region}.run.app" }

  common_env = merge({
    CMBCLUSTER_MODE        = "cloud"
    STORE                  = "firestore"
    PROJECT_ID             = var.project_id
    BASE_DOMAIN            = var.base_domain
    APPS_DOMAIN            = var.apps_domain
    PUBLIC_URL             = local.public_url
    NAMESPACE              = var.namespace
    OIDC_CLIENT_ID         = var.oidc_client_id
    ADMIN_EMAILS           = join(",", var.admin_emails)
    ALLOWED_EMAIL_DOMAINS  = join(",", var.allowed_email_domains)
    TASKS_AUDIENCE         = local.run_url.spawn
    TASKS_SERVICE_ACCOUNTS = google_service_account.tasks.email
    CULL_AUDIENCE          = local.run_url.cull
    CULL_SERVICE_ACCOUNTS  = google_service_account.scheduler.email
    # Cloud Tasks queue (functions/core/queue/cloudtasks.py)
    TASKS_LOCATION        = var.region
    TASKS_QUEUE           = google_cloud_tasks_queue.spawn.name
    TASKS_TARGET_URL      = local.run_url.spawn
    TASKS_SERVICE_ACCOUNT = google_service_account.tasks.email
    # Kubernetes backend (functions/core/backends/kubernetes.py)
    K8S_ENDPOINT          = google_container_cluster.main.private_cluster_config[0].private_endpoint
    K8S_CA_CERT           = google_container_cluster.main.master_auth[0].cluster_ca_certificate
    K8S_STORAGE_CLASS     = "standard-rwo"
    K8S_INGRESS_CLASS     = "nginx"
    K8S_INGRESS_NAMESPACE = "ingress-nginx"
    K8S_APPS_HOST         = local.apps_host
    K8S_AUTH_URL          = "${local.run_url.route}/route/verify"
  }, var.settings)
}

resource "google_cloud_run_v2_service" "functions" {
  for_each = local.functions
  name     = "cmbcluster-${each.key}"
  location = var.region
  ingress  = "INGRESS_TRAFFIC_ALL"

  template {
    service_account = google_service_account.functions.email
    timeout         = each.value.timeout
    scaling {
      min_instance_count = each.key == "route" ? 1 : 0 # on every proxied request: no cold starts
      max_instance_count = 20
    }

    # Only the functions that call the cluster's private endpoint get a VPC path.
    dynamic "vpc_access" {
      for_each = each.value.kubernetes ? [1] : []
      content {
        egress = "PRIVATE_RANGES_ONLY"
        network_interfaces {
          network    = google_compute_network.main.id
          subnetwork = google_compute_subnetwork.run.id
        }
      }
    }

    containers {
      image = var.functions_image
      env {
        name  = "FUNCTION_TARGET"
        value = each.key
      }
      dynamic "env" {
        for_each = local.common_env
        content {
          name  = env.key
          value = env.value
        }
      }
      env {
        name = "SECRET_KEY"
        value_source {
          secret_key_ref {
            secret  = google_secret_manager_secret.secret_key.secret_id
            version = "latest"
          }
        }
      }
      env {
        name = "OIDC_CLIENT_SECRET"
        value_source {
          secret_key_ref {
            secret  = google_secret_manager_secret.oidc_client_secret.secret_id
            version = "latest"
          }
        }
      }
      resources {
        limits = { cpu = "1", memory = "512Mi" }
      }
      startup_probe {
        http_get {
          path = "/health"
        }
      }
    }
  }

  depends_on = [google_secret_manager_secret_iam_member.functions]
}

# Browsers (and ingress-nginx's auth subrequests) call these; each checks its callers
# itself (sessions, Origin, the Cloud Tasks OIDC token on /tasks/spawn).
resource "google_cloud_run_v2_service_iam_member" "public" {
  for_each = { for name, f in local.functions : name => f if f.public }
  name     = google_cloud_run_v2_service.functions[each.key].name
  location = var.region
  role     = "roles/run.invoker"
  member   = "allUsers"
}

resource "google_cloud_run_v2_service_iam_member" "tasks_invoke_spawn" {
  name     = google_cloud_run_v2_service.functions["spawn"].name
  location = var.region
  role     = "roles/run.invoker"
  member   = "serviceAccount:${google_service_account.tasks.email}"
}

# cull is not public: Cloud Run's IAM check stops everyone but the scheduler before the
# function's own token check runs.
resource "google_cloud_run_v2_service_iam_member" "scheduler_invoke_cull" {
  name     = google_cloud_run_v2_service.functions["cull"].name
  location = var.region
  role     = "roles/run.invoker"
  member   = "serviceAccount:${google_service_account.scheduler.email}"
}
