resource "google_compute_network" "main" {
  name                    = "cmbcluster"
  auto_create_subnetworks = false
}

resource "google_compute_subnetwork" "nodes" {
  name                     = "cmbcluster-nodes"
  region                   = var.region
  network                  = google_compute_network.main.id
  ip_cidr_range            = "10.10.0.0/20"
  private_ip_google_access = true # private nodes pull from Artifact Registry
  secondary_ip_range {
    range_name    = "pods"
    ip_cidr_range = "10.20.0.0/14"
  }
  secondary_ip_range {
    range_name    = "services"
    ip_cidr_range = "10.30.0.0/20"
  }
}

# Cloud Run's Direct VPC egress: the functions that drive Kubernetes reach the cluster's
# private endpoint from here.
resource "google_compute_subnetwork" "run" {
  name                     = "cmbcluster-run"
  region                   = var.region
  network                  = google_compute_network.main.id
  ip_cidr_range            = "10.40.0.0/24"
  private_ip_google_access = true
}

# Private nodes have no public addresses: environments reach the internet (pip, data
# archives) through NAT.
resource "google_compute_router" "main" {
  name    = "cmbcluster"
  region  = var.region
  network = google_compute_network.main.id
}

resource "google_compute_router_nat" "main" {
  name                               = "cmbcluster"
  router                             = google_compute_router.main.name
  region                             = var.region
  nat_ip_allocate_option             = "AUTO_ONLY"
  source_subnetwork_ip_ranges_to_nat = "ALL_SUBNETWORKS_ALL_IP_RANGES"
}
