variable "project" {
  type        = string
  description = "The GCP project that owns the bucket."
}

variable "bucket_name" {
  type        = string
  description = "The bucket name (globally unique, 3-63 lowercase letters, digits, hyphens, underscores, dots)."

  validation {
    condition     = can(regex("^[a-z0-9][a-z0-9._-]{1,61}[a-z0-9]$", var.bucket_name))
    error_message = "The bucket_name must be 3-63 lowercase letters, digits, hyphens, underscores and dots."
  }
}

variable "location" {
  type        = string
  description = "A region (europe-west1) or multi-region (EU)."
  default     = "EU"
}

variable "storage_class" {
  type        = string
  description = "STANDARD, NEARLINE, COLDLINE or ARCHIVE."
  default     = "STANDARD"
}

variable "retention_days" {
  type        = number
  description = "Objects older than this many days are deleted."
  default     = 30

  validation {
    condition     = var.retention_days >= 1
    error_message = "The retention_days must be at least 1."
  }
}

variable "versioning" {
  type        = bool
  description = "Keep noncurrent object versions."
  default     = false
}

variable "force_destroy" {
  type        = bool
  description = "Let a destroy delete a bucket that still holds objects."
  default     = false
}

variable "labels" {
  type        = map(string)
  description = "Labels of the bucket."
  default     = {}
}
