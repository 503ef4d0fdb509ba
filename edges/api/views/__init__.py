"""The REST API for integrators and people: thin edges over the same services as the web pages.

One module a resource. Views check the shape of input (serializers), find the objects the caller may
see (querysets from `permissions`), call one step of the process layer or one service and render its
result. They decide nothing: every rule is the service's or the policy's, every list filter the same
reader the consoles use (authority.reports), and every refusal comes back in the one error shape
(`errors`).
"""
