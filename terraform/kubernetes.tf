# The user namespace, the control plane's rights in it, and the policy confining it.

resource "kubernetes_namespace_v1" "environments" {
  metadata {
    name = var.namespace
    labels = {
      # The pod spec (functions/core/backends/manifests.py) meets the "restricted" Pod
      # Security Standard; the API server refuses any pod in here that does not.
      "pod-security.kubernetes.io/enforce" = "restricted"
      "pod-security.kubernetes.io/audit"   = "restricted"
    }
  }
}

# What KubernetesBackend calls, in this namespace only. Nothing cluster-wide, no
# secrets, no exec, no RBAC or policy edits: a leaked control-plane credential can start
# and stop environments, not reach into them or widen its own rights.
resource "kubernetes_role_v1" "control_plane" {
  metadata {
    name      = "cmbcluster-control-plane"
    namespace = kubernetes_namespace_v1.environments.metadata[0].name
  }
  rule {
    api_groups = [""]
    resources  = ["pods", "services"]
    verbs      = ["get", "list", "watch", "create", "delete"]
  }
  rule {
    api_groups = [""]
    resources  = ["persistentvolumeclaims"]
    verbs      = ["get", "list", "create"] # workspaces are never deleted by the platform
  }
  rule {
    api_groups = ["networking.k8s.io"]
    resources  = ["ingresses"]
    verbs      = ["get", "list", "create", "delete"]
  }
}

# GKE maps a Google service account authenticated with IAM to a user named by its e-mail.
resource "kubernetes_role_binding_v1" "control_plane" {
  metadata {
    name      = "cmbcluster-control-plane"
    namespace = kubernetes_namespace_v1.environments.metadata[0].name
  }
  role_ref {
    api_group = "rbac.authorization.k8s.io"
    kind      = "Role"
    name      = kubernetes_role_v1.control_plane.metadata[0].name
  }
  subject {
    kind      = "User"
    name      = google_service_account.functions.email
    api_group = "rbac.authorization.k8s.io"
  }
}

# The same object manifests.network_policy() builds; tests/cloud checks they agree.
resource "kubernetes_manifest" "network_policy" {
  manifest = yamldecode(templatefile("${path.module}/k8s/network-policy.yaml.tftpl", {
    namespace         = kubernetes_namespace_v1.environments.metadata[0].name
    ingress_namespace = "ingress-nginx"
  }))
}

resource "google_compute_address" "ingress" {
  name   = "cmbcluster-ingress"
  region = var.region
}

resource "helm_release" "ingress_nginx" {
  name             = "ingress-nginx"
  repository       = "https://kubernetes.github.io/ingress-nginx"
  chart            = "ingress-nginx"
  version          = "4.11.3"
  namespace        = "ingress-nginx"
  create_namespace = true

  values = [yamlencode({
    controller = {
      service = { loadBalancerIP = google_compute_address.ingress.address }
      config = {
        # Snippet annotations let an Ingress author inject nginx config; nobody needs it.
        "allow-snippet-annotations" = "false"
        "use-forwarded-headers"     = "false"
      }
      # A wildcard certificate for the apps domain (cert-manager, DNS-01), see README.
      extraArgs = var.apps_domain == "" ? {} : {
        "default-ssl-certificate" = "ingress-nginx/cmbcluster-apps-tls"
      }
    }
  })]
}

# With an apps domain, environments live on their own hosts; this is the route on each
# of them that turns the hub's one-time ticket into the environment's cookie.
resource "kubernetes_manifest" "env_handoff" {
  for_each = var.apps_domain == "" ? {} : { for i, doc in split("\n---\n", templatefile("${path.module}/k8s/env-handoff.yaml.tftpl", {
    namespace   = kubernetes_namespace_v1.environments.metadata[0].name
    route_host  = trimprefix(local.run_url.route, "https://")
    apps_domain = var.apps_domain
  })) : tostring(i) => doc }
  manifest = yamldecode(each.value)
}
