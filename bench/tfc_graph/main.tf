# A synthetic component for bench/tfc_graph.py: one resource, an output built from its inputs (known at plan time).
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
