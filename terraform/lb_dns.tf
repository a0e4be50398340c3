# The hub's host: a global HTTPS load balancer with a Google-managed certificate, routing
# by path to the functions (serverless NEGs). /user/... goes to ingress-nginx when
# environments share the hub's host (apps_domain empty).

resource "google_compute_global_address" "hub" {
  name = "cmbcluster-hub"
}

resource "google_compute_region_network_endpoint_group" "functions" {
  for_each              = { for name, f in local.functions : name => f if f.public }
  name                  = "cmbcluster-${each.key}"
  region                = var.region
  network_endpoint_type = "SERVERLESS"
  cloud_run {
    service = google_cloud_run_v2_service.functions[each.key].name
  }
}

resource "google_compute_backend_service" "functions" {
  for_each              = google_compute_region_network_endpoint_group.functions
  name                  = "cmbcluster-${each.key}"
  load_balancing_scheme = "EXTERNAL_MANAGED"
  protocol              = "HTTPS"
  backend {
    group = each.value.id
  }
}

# ingress-nginx, reached by its static IP, for environments under the hub's host.
resource "google_compute_global_network_endpoint_group" "ingress" {
  name                  = "cmbcluster-ingress"
  network_endpoint_type = "INTERNET_IP_PORT"
  default_port          = 443
}

resource "google_compute_global_network_endpoint" "ingress" {
  global_network_endpoint_group = google_compute_global_network_endpoint_group.ingress.id
  ip_address                    = google_compute_address.ingress.address
  port                          = 443
}

resource "google_compute_backend_service" "environments" {
  name                  = "cmbcluster-environments"
  load_balancing_scheme = "EXTERNAL_MANAGED"
  protocol              = "HTTPS"
  timeout_sec           = 3600 # Streamlit's websocket lives as long as the tab
  backend {
    group = google_compute_global_network_endpoint_group.ingress.id
  }
}

resource "google_compute_url_map" "hub" {
  name            = "cmbcluster-hub"
  default_service = google_compute_backend_service.functions["auth"].id

  host_rule {
    hosts        = [var.base_domain]
    path_matcher = "hub"
  }

  path_matcher {
    name            = "hub"
    default_service = google_compute_backend_service.functions["auth"].id
    path_rule {
      paths   = ["/auth/*", "/api/me"]
      service = google_compute_backend_service.functions["auth"].id
    }
    path_rule {
      paths   = ["/api/admin", "/api/admin/*"]
      service = google_compute_backend_service.functions["admin"].id
    }
    path_rule {
      paths   = ["/api/*"]
      service = google_compute_backend_service.functions["spawn"].id
    }
    path_rule {
      paths   = ["/route/activity"]
      service = google_compute_backend_service.functions["route"].id
    }
    path_rule {
      paths   = ["/user/*"]
      service = google_compute_backend_service.environments.id
    }
    # /tasks/* and /cull are not routed: only Cloud Tasks and Scheduler call them, on
    # the run.app URLs.
  }
}

resource "google_compute_managed_ssl_certificate" "hub" {
  name = "cmbcluster-hub"
  managed {
    domains = [var.base_domain]
  }
}

resource "google_compute_target_https_proxy" "hub" {
  name             = "cmbcluster-hub"
  url_map          = google_compute_url_map.hub.id
  ssl_certificates = [google_compute_managed_ssl_certificate.hub.id]
}

resource "google_compute_global_forwarding_rule" "hub" {
  name                  = "cmbcluster-hub"
  load_balancing_scheme = "EXTERNAL_MANAGED"
  target                = google_compute_target_https_proxy.hub.id
  ip_address            = google_compute_global_address.hub.address
  port_range            = "443"
}

# DNS, when the zone is in Cloud DNS. The managed certificate turns ACTIVE only once
# base_domain resolves to the load balancer (allow up to an hour).
resource "google_dns_record_set" "hub" {
  count        = var.dns_zone == "" ? 0 : 1
  managed_zone = var.dns_zone
  name         = "${var.base_domain}."
  type         = "A"
  ttl          = 300
  rrdatas      = [google_compute_global_address.hub.address]
}

resource "google_dns_record_set" "apps" {
  count        = var.dns_zone == "" || var.apps_domain == "" ? 0 : 1
  managed_zone = var.dns_zone
  name         = "*.${var.apps_domain}."
  type         = "A"
  ttl          = 300
  rrdatas      = [google_compute_address.ingress.address]
}
