output "bucket_name" {
  description = "The bucket's name."
  value       = var.bucket_name
  depends_on  = [google_storage_bucket.this]
}

output "bucket_url" {
  description = "The bucket's gs:// URL."
  value       = "gs://${var.bucket_name}"
  depends_on  = [google_storage_bucket.this]
}
