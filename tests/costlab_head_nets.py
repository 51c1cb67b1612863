"""Small nn.Modules whose heads are named as torchvision's and timm's are (``fc``, ``classifier``,
``head``, ``head.fc``), importable as ``costlab_head_nets:<factory>`` (no torchvision or timm needed)."""

from __future__ import annotations

from torch import nn


class TorchvisionResNetLike(nn.Module):
    """torchvision's ResNet names: conv1, bn1, layer1, avgpool, fc."""

    def __init__(self, classes: int = 10) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 8, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(8)
        self.layer1 = nn.Sequential(nn.Conv2d(8, 8, 3, padding=1), nn.ReLU())
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(8, classes)

    def forward(self, x):  # type: ignore[no-untyped-def]
        return self.fc(self.avgpool(self.layer1(self.bn1(self.conv1(x)))).flatten(1))


class TorchvisionMobileNetLike(nn.Module):
    """torchvision's MobileNet names: features, classifier = (Dropout, Linear)."""

    def __init__(self, classes: int = 10) -> None:
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(3, 16, 3, stride=2, padding=1), nn.BatchNorm2d(16), nn.ReLU6())
        self.classifier = nn.Sequential(nn.Dropout(0.2), nn.Linear(16, classes))

    def forward(self, x):  # type: ignore[no-untyped-def]
        return self.classifier(self.features(x).mean((2, 3)))


class TimmVitLike(nn.Module):
    """timm's plain head: patch_embed.proj, blocks, norm, head (a Linear)."""

    def __init__(self, classes: int = 10) -> None:
        super().__init__()
        self.patch_embed = nn.Module()
        self.patch_embed.proj = nn.Conv2d(3, 12, 4, stride=4)
        self.blocks = nn.Sequential(nn.Conv2d(12, 12, 1), nn.GELU())
        self.norm = nn.BatchNorm2d(12)
        self.head = nn.Linear(12, classes)

    def forward(self, x):  # type: ignore[no-untyped-def]
        return self.head(self.norm(self.blocks(self.patch_embed.proj(x))).mean((2, 3)))


class TimmConvNextLike(nn.Module):
    """timm's head module: stem, stages, head = (norm, flatten, fc), the classifier at head.fc."""

    def __init__(self, classes: int = 10) -> None:
        super().__init__()
        self.stem = nn.Conv2d(3, 8, 4, stride=4)
        self.stages = nn.Sequential(nn.Conv2d(8, 8, 3, padding=1), nn.ReLU())
        self.head = nn.Module()
        self.head.global_pool = nn.AdaptiveAvgPool2d(1)
        self.head.norm = nn.BatchNorm2d(8)
        self.head.flatten = nn.Flatten()
        self.head.fc = nn.Linear(8, classes)

    def forward(self, x):  # type: ignore[no-untyped-def]
        head = self.head
        return head.fc(head.flatten(head.norm(head.global_pool(self.stages(self.stem(x))))))


def resnet_like(classes: int = 10) -> nn.Module:
    return TorchvisionResNetLike(classes)


def mobilenet_like(classes: int = 10) -> nn.Module:
    return TorchvisionMobileNetLike(classes)


def vit_like(classes: int = 10) -> nn.Module:
    return TimmVitLike(classes)


def convnext_like(classes: int = 10) -> nn.Module:
    return TimmConvNextLike(classes)


def frozen_features(classes: int = 10) -> nn.Module:
    """mobilenet_like with its features frozen by hand and the classifier's bias frozen too."""
    model = TorchvisionMobileNetLike(classes)
    for parameter in model.features.parameters():
        parameter.requires_grad_(False)
    model.classifier[1].bias.requires_grad_(False)
    return model
