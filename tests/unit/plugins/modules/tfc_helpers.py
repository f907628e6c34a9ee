"""Shared pieces of the HCP Terraform module tests: arguments that point a module at the sandbox."""

import uuid

# One Terraform configuration for every component of the graph tests (this module's and the roles'): it chains
# its `upstream` input into its `id` output, so the outputs show the order the runs ran in.
GRAPH_TF = """
variable "name" {
  type = string
}
variable "upstream" {
  type    = string
  default = ""
}
resource "terraform_data" "this" {
  input = "${var.name}<${var.upstream}"
}
output "id" {
  value = "${var.name}<${var.upstream}"
}
"""


def unique(prefix):
    return "%s-%s" % (prefix, uuid.uuid4().hex[:6])


def writes(sandbox, since):
    """Requests that changed something on the tfc port after log position `since`."""
    return [e for e in sandbox.log.entries[since:] if e["family"] == "tfc" and e["method"] in ("POST", "PATCH", "PUT", "DELETE")
            and not e["path"].startswith("/_sandbox")]
