"""Image: the ECR repository and the Airflow image every other stack runs."""

from __future__ import annotations

from aws_cdk import CfnOutput, Stack
from constructs import Construct

from app_config.model import DeploymentConfig
from constructs_lib.image import AirflowImage


class ImageStack(Stack):
    """:ivar image: :class:`~constructs_lib.image.AirflowImage` (``image.container_image`` is the
    one ``ecs.ContainerImage`` of every task definition)."""

    def __init__(self, scope: Construct, construct_id: str, *, config: DeploymentConfig, **kwargs):
        super().__init__(scope, construct_id, **kwargs)
        self.image = AirflowImage(
            self,
            "AirflowImage",
            image_uri=config.image.image_uri,
            image_tag=config.image.image_tag,
            retain=config.retain_data,
            pip_index_file=config.image.pip_index_file,
            build_args=config.image.build_args,
        )
        # With image_tag the other stacks reference the repository (its name in the image URI, its
        # ARN in the pull permission); without it they do not. Exported in every configuration,
        # so going back from image_tag to a built image does not remove exports that the deployed
        # stacks still import ("export ... in use").
        self.export_value(self.image.repository.repository_name)
        self.export_value(self.image.repository.repository_arn)
        CfnOutput(
            self,
            "ImageRepositoryUri",
            value=self.image.repository.repository_uri,
            description="The app's ECR repository: make publish pushes version-tagged images here, "
            "-c image_tag=<tag> deploys one",
        )
