resource "google_container_cluster" "main" {
  name       = "cmbcluster"
  location   = var.region
  network    = google_compute_network.main.id
  subnetwork = google_compute_subnetwork.nodes.id

  remove_default_node_pool = true
  initial_node_count       = 1
  deletion_protection      = true

  # Dataplane V2 enforces the NetworkPolicy that confines every environment.
  datapath_provider = "ADVANCED_DATAPATH"

  ip_allocation_policy {
    cluster_secondary_range_name  = "pods"
    services_secondary_range_name = "services"
  }

  private_cluster_config {
    enable_private_nodes    = true
    enable_private_endpoint = false # operators use the public endpoint, restricted below
    master_ipv4_cidr_block  = "172.16.0.0/28"
    master_global_access_config {
      enabled = true
    }
  }

  master_authorized_networks_config {
    dynamic "cidr_blocks" {
      for_each = concat(var.admin_cidrs, [google_compute_subnetwork.run.ip_cidr_range])
      content {
        cidr_block = cidr_blocks.value
      }
    }
  }

  workload_identity_config {
    workload_pool = "${var.project_id}.svc.id.goog"
  }

  release_channel {
    channel = "REGULAR"
  }

  # No client certificates or basic auth: IAM + RBAC only.
  master_auth {
    client_certificate_config {
      issue_client_certificate = false
    }
  }
}

resource "google_container_node_pool" "environments" {
  name     = "environments"
  cluster  = google_container_cluster.main.id
  location = var.region

  autoscaling {
    total_min_node_count = 1
    total_max_node_count = var.max_nodes
  }

  management {
    auto_repair  = true
    auto_upgrade = true
  }

  node_config {
    machine_type    = var.node_machine_type
    image_type      = "COS_CONTAINERD"
    disk_size_gb    = 100
    service_account = google_service_account.nodes.email
    oauth_scopes    = ["https://www.googleapis.com/auth/cloud-platform"]

    # Pods see GKE's metadata server, never the node's credentials (and the
    # NetworkPolicy blocks link-local addresses for environments anyway).
    workload_metadata_config {
      mode = "GKE_METADATA"
    }

    shielded_instance_config {
      enable_secure_boot          = true
      enable_integrity_monitoring = true
    }

    labels = { "cmbcluster/pool" = "environments" }
  }
}
