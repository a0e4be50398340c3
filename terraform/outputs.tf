output "hub_ip" {
  description = "Point base_domain here (A record) if DNS is not in Cloud DNS."
  value       = google_compute_global_address.hub.address
}

output "ingress_ip" {
  description = "ingress-nginx: point *.apps_domain here (A record)."
  value       = google_compute_address.ingress.address
}

output "service_urls" {
  value = { for name, s in google_cloud_run_v2_service.functions : name => s.uri }
}

output "registry" {
  description = "Push images here (cloudbuild/build.yaml)."
  value       = local.registry
}

output "cluster" {
  value = {
    name     = google_container_cluster.main.name
    location = google_container_cluster.main.location
  }
}

output "spawn_queue" {
  value = google_cloud_tasks_queue.spawn.id
}

output "service_accounts" {
  value = {
    functions = google_service_account.functions.email
    tasks     = google_service_account.tasks.email
    scheduler = google_service_account.scheduler.email
  }
}
