"""skyforge sandbox: a strict local stand-in for the GCP, Cloudflare, HCP Terraform and Kubernetes/Helm
control planes, on loopback only. See sandbox/README.md."""
