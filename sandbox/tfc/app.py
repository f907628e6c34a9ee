"""Placeholder until this family is built; answers 501 so nothing pretends to work."""

from ..web import ApiError, App


class TfcApp(App):
    family = "tfc"

    def dispatch(self, req):
        raise ApiError(501, "the sandbox does not serve the tfc API yet")
