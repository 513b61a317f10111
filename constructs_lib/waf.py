"""An AWS WAF web ACL on the UI load balancer that rate-limits the login and token paths.

The api-server runs as several tasks behind one load balancer, so a limit inside Airflow would
count per task; AWS WAF counts at the load balancer, for every task at once.
"""

from __future__ import annotations

from aws_cdk import aws_elasticloadbalancingv2 as elbv2
from aws_cdk import aws_wafv2 as wafv2
from constructs import Construct

from app_config.settings import WAF_RATE_LIMIT_RANGE

#: Paths that check a password, as prefixes (AWS WAF ``STARTS_WITH``) of the decoded, normalized
#: URI path. Airflow 3.3.2 mounts the auth manager's app at ``/auth``
#: (``airflow/api_fastapi/app.py``, ``AUTH_MANAGER_FASTAPI_APP_PREFIX``); the FAB provider 3.10.2
#: serves its login form there at ``/auth/login/`` (``FabAuthManager.get_url_login``) and the REST
#: API's tokens at ``POST /auth/token`` and ``POST /auth/token/cli``
#: (``providers/fab/auth_manager/api_fastapi/routes/login.py``).
LOGIN_PATH_PREFIXES = ("/auth/login", "/auth/token")
#: The period AWS WAF counts a client's requests over (seconds; one of 60, 120, 300, 600).
#: Source: AWS WAF Developer Guide, "Rate-based rule statement",
#: https://docs.aws.amazon.com/waf/latest/developerguide/waf-rule-statement-type-rate-based.html
LOGIN_RATE_WINDOW_SECONDS = 300
#: Text transformations applied to the URI path before the prefix match, in order: uvicorn
#: percent-decodes the path before the api-server routes it, so ``/auth/%74oken`` is
#: ``/auth/token`` to Airflow and must count as such; NORMALIZE_PATH folds ``//`` and ``/./``.
PATH_TRANSFORMATIONS = ("URL_DECODE", "NORMALIZE_PATH")


class LoginRateLimit(Construct):
    """A regional web ACL (default action: allow) with one rate-based rule, associated with
    ``load_balancer``: a client IP that sends more than ``limit`` requests to
    :data:`LOGIN_PATH_PREFIXES` within :data:`LOGIN_RATE_WINDOW_SECONDS` gets 403 on those paths
    until its rate falls below the limit; other paths are not counted or blocked. AWS WAF
    aggregates and acts within about a minute, so a burst can pass the limit briefly.

    Cost (``make cost`` prices it): a web ACL, one rule, and every request the load balancer
    receives (AWS WAF pricing, https://aws.amazon.com/waf/pricing/).

    :param limit: requests per client IP per window, within
        :data:`app_config.settings.WAF_RATE_LIMIT_RANGE`.
    :raises ValueError: ``limit`` outside that range (the configuration refuses it first, naming
        ``login_rate_limit``).
    :ivar web_acl: ``wafv2.CfnWebACL``
    """

    def __init__(self, scope: Construct, construct_id: str, *, load_balancer: elbv2.IApplicationLoadBalancer,
                 limit: int):
        super().__init__(scope, construct_id)
        low, high = WAF_RATE_LIMIT_RANGE
        if not low <= limit <= high:
            raise ValueError(f"limit={limit}: AWS WAF accepts {low} to {high} requests per window")
        transformations = [
            wafv2.CfnWebACL.TextTransformationProperty(priority=i, type=t) for i, t in enumerate(PATH_TRANSFORMATIONS)
        ]
        prefixes = [
            wafv2.CfnWebACL.StatementProperty(
                byte_match_statement=wafv2.CfnWebACL.ByteMatchStatementProperty(
                    field_to_match=wafv2.CfnWebACL.FieldToMatchProperty(uri_path={}),
                    positional_constraint="STARTS_WITH",
                    search_string=prefix,
                    text_transformations=transformations,
                )
            )
            for prefix in LOGIN_PATH_PREFIXES
        ]
        visibility = lambda name: wafv2.CfnWebACL.VisibilityConfigProperty(  # noqa: E731
            cloud_watch_metrics_enabled=True, metric_name=name, sampled_requests_enabled=True
        )
        self.web_acl = wafv2.CfnWebACL(
            self,
            "WebAcl",
            scope="REGIONAL",
            default_action=wafv2.CfnWebACL.DefaultActionProperty(allow={}),
            visibility_config=visibility("UiWebAcl"),
            rules=[
                wafv2.CfnWebACL.RuleProperty(
                    name="RateLimitLogin",
                    priority=0,
                    action=wafv2.CfnWebACL.RuleActionProperty(block={}),
                    statement=wafv2.CfnWebACL.StatementProperty(
                        rate_based_statement=wafv2.CfnWebACL.RateBasedStatementProperty(
                            aggregate_key_type="IP",
                            limit=limit,
                            evaluation_window_sec=LOGIN_RATE_WINDOW_SECONDS,
                            scope_down_statement=wafv2.CfnWebACL.StatementProperty(
                                or_statement=wafv2.CfnWebACL.OrStatementProperty(statements=prefixes)
                            ),
                        )
                    ),
                    visibility_config=visibility("RateLimitLogin"),
                )
            ],
        )
        wafv2.CfnWebACLAssociation(
            self, "Association", resource_arn=load_balancer.load_balancer_arn, web_acl_arn=self.web_acl.attr_arn
        )
