output "repository_id" {
  description = "The repository's resource ID."
  value       = "projects/${var.project}/locations/${var.location}/repositories/${var.repository_id}"
  depends_on  = [google_artifact_registry_repository.this]
}

output "repository_url" {
  description = "Where docker pushes and pulls images."
  value       = "${var.location}-docker.pkg.dev/${var.project}/${var.repository_id}"
  depends_on  = [google_artifact_registry_repository.this]
}
