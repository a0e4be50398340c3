variable "project_id" {
  description = "GCP project (PROJECT_ID)."
  type        = string
}

variable "region" {
  description = "Region of the cluster, Cloud Run, Cloud Tasks and the registry."
  type        = string
  default     = "europe-west1"
}

variable "firestore_location" {
  description = "Firestore location (a region or multi-region such as eur3)."
  type        = string
  default     = "eur3"
}

variable "base_domain" {
  description = "The hub's host (BASE_DOMAIN), e.g. cmbcluster.example.org."
  type        = string
}

variable "apps_domain" {
  description = "Separate domain for environments: each is served on <env-id>.<apps_domain>, its own origin (see ARCHITECTURE.md, security model). Empty: environments are served under the hub's host at /user/..."
  type        = string
  default     = ""
}

variable "dns_zone" {
  description = "Name of an existing Cloud DNS managed zone holding base_domain (and apps_domain). Empty: manage DNS elsewhere (see outputs)."
  type        = string
  default     = ""
}

variable "namespace" {
  description = "Kubernetes namespace of the user environments (NAMESPACE)."
  type        = string
  default     = "cmbcluster"
}

variable "functions_image" {
  description = "Control-plane image built from Dockerfile.functions (cloudbuild/build.yaml)."
  type        = string
}

variable "admin_cidrs" {
  description = "Networks allowed to reach the cluster's public API endpoint (operators, Cloud Build private pool)."
  type        = list(string)
  default     = []
}

variable "node_machine_type" {
  type    = string
  default = "e2-standard-8"
}

variable "max_nodes" {
  description = "Upper bound of the environment node pool (per zone)."
  type        = number
  default     = 5
}

variable "spawn_rate_per_second" {
  description = "Cloud Tasks dispatch rate: how fast spawns reach the Kubernetes API."
  type        = number
  default     = 5
}

variable "spawn_max_concurrent" {
  type    = number
  default = 20
}

variable "oidc_client_id" {
  description = "OAuth client id (GOOGLE_CLIENT_ID / OIDC_CLIENT_ID)."
  type        = string
}

variable "admin_emails" {
  type    = list(string)
  default = []
}

variable "allowed_email_domains" {
  type    = list(string)
  default = []
}

variable "settings" {
  description = "Further environment variables for every function (MAX_INACTIVE_HOURS, PROFILES, ...)."
  type        = map(string)
  default     = {}
}
