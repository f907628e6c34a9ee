variable "project" {
  type        = string
  description = "The GCP project that owns the repository."
}

variable "location" {
  type        = string
  description = "The repository's region, for example europe-west1."
}

variable "repository_id" {
  type        = string
  description = "The repository ID (lowercase letters, digits and hyphens)."

  validation {
    condition     = can(regex("^[a-z]([a-z0-9-]{0,61}[a-z0-9])?$", var.repository_id))
    error_message = "The repository_id must be lowercase letters, digits and hyphens, starting with a letter."
  }
}

variable "description" {
  type        = string
  description = "A description of the repository."
  default     = ""
}

variable "immutable_tags" {
  type        = bool
  description = "Refuse to move a tag to another image."
  default     = false
}

variable "labels" {
  type        = map(string)
  description = "Labels of the repository."
  default     = {}
}
