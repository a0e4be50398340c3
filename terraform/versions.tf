terraform {
  required_version = ">= 1.6"
  required_providers {
    google     = { source = "hashicorp/google", version = ">= 6.0" }
    kubernetes = { source = "hashicorp/kubernetes", version = ">= 2.30" }
    helm       = { source = "hashicorp/helm", version = ">= 2.13, < 3.0" }
  }
  # State in a bucket made once by hand: gsutil mb -l <region> gs://<project>-tfstate
  backend "gcs" {
    prefix = "cmbcluster"
  }
}

provider "google" {
  project = var.project_id
  region  = var.region
}

data "google_client_config" "current" {}
data "google_project" "current" {}

# Whoever runs terraform reaches the cluster through its public endpoint, which only
# var.admin_cidrs may use (see gke.tf).
provider "kubernetes" {
  host                   = "https://${google_container_cluster.main.endpoint}"
  token                  = data.google_client_config.current.access_token
  cluster_ca_certificate = base64decode(google_container_cluster.main.master_auth[0].cluster_ca_certificate)
}

provider "helm" {
  kubernetes {
    host                   = "https://${google_container_cluster.main.endpoint}"
    token                  = data.google_client_config.current.access_token
    cluster_ca_certificate = base64decode(google_container_cluster.main.master_auth[0].cluster_ca_certificate)
  }
}
