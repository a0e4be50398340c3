resource "google_firestore_database" "main" {
  name                    = "(default)"
  location_id             = var.firestore_location
  type                    = "FIRESTORE_NATIVE"
  concurrency_mode        = "PESSIMISTIC" # transactions lock: the slot claims rely on it
  delete_protection_state = "DELETE_PROTECTION_ENABLED"
}

# The composite indexes listed in functions/core/store/firestore.py's header.
locals {
  environment_indexes = {
    owner_created       = [["owner", "ASCENDING"], ["created", "DESCENDING"]]
    state_created       = [["state", "ASCENDING"], ["created", "DESCENDING"]]
    owner_state_created = [["owner", "ASCENDING"], ["state", "ASCENDING"], ["created", "DESCENDING"]]
    state_idle_since    = [["state", "ASCENDING"], ["idle_since", "ASCENDING"]]
  }
}

resource "google_firestore_index" "environments" {
  for_each   = local.environment_indexes
  database   = google_firestore_database.main.name
  collection = "environments"

  dynamic "fields" {
    for_each = each.value
    content {
      field_path = fields.value[0]
      order      = fields.value[1]
    }
  }
}

# Expired single-use values go away on their own.
resource "google_firestore_field" "used_once_ttl" {
  database   = google_firestore_database.main.name
  collection = "used_once"
  field      = "expires"
  ttl_config {}
}

# Never queried: no single-field indexes (cheaper writes, no index-entry limits).
resource "google_firestore_field" "unindexed" {
  for_each   = { "environments/events" = ["environments", "events"], "environments/timings" = ["environments", "timings"], "audit/detail" = ["audit", "detail"] }
  database   = google_firestore_database.main.name
  collection = each.value[0]
  field      = each.value[1]
  index_config {}
}
