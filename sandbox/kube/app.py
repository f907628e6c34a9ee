"""Placeholder until this family is built; answers 501 so nothing pretends to work."""

from ..web import ApiError, App


class KubeApp(App):
    family = "kube"

    def dispatch(self, req):
        raise ApiError(501, "the sandbox does not serve the kube API yet")
