"""Placeholder until this family is built; answers 501 so nothing pretends to work."""

from ..web import ApiError, App


class CloudflareApp(App):
    family = "cloudflare"

    def dispatch(self, req):
        raise ApiError(501, "the sandbox does not serve the cloudflare API yet")
