"""VideoWidget: paints the newest frame scaled to fit, aspect ratio kept, black bars around it; a click on the
image is reported in image pixels (the window selects a person or a joint with it)."""

from __future__ import annotations

from PyQt6.QtCore import QPointF, QRect, QSize, Qt, pyqtSignal, pyqtSlot
from PyQt6.QtGui import QColor, QImage, QMouseEvent, QPainter, QPaintEvent
from PyQt6.QtWidgets import QSizePolicy, QWidget

PLACEHOLDER = "Open a video file, a camera or an RTSP URL, then press Start"


def fit_rect(image_size: QSize, area: QRect) -> QRect:
    """The largest rectangle of the image's aspect ratio centred in `area`."""
    if image_size.isEmpty() or area.isEmpty():
        return QRect()
    scaled = image_size.scaled(area.size(), Qt.AspectRatioMode.KeepAspectRatio)
    x = area.x() + (area.width() - scaled.width()) // 2
    y = area.y() + (area.height() - scaled.height()) // 2
    return QRect(x, y, scaled.width(), scaled.height())


class VideoWidget(QWidget):
    """Shows the latest QImage given to `set_image`; a hint text while there is none."""

    clicked = pyqtSignal(QPointF)     # a left click on the image, in image pixels

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self._image: QImage | None = None
        self._placeholder = PLACEHOLDER
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.setMinimumSize(320, 180)
        self.setAttribute(Qt.WidgetAttribute.WA_OpaquePaintEvent)   # every pixel is painted below
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)      # the window's keys go here, not to a text box

    @property
    def image(self) -> QImage | None:
        return self._image

    def sizeHint(self) -> QSize:
        return QSize(960, 540)

    @property
    def placeholder(self) -> str:
        return self._placeholder

    @pyqtSlot(QImage)
    def set_image(self, image: QImage) -> None:
        self._image = None if image is None or image.isNull() else image
        self.update()

    def clear(self, placeholder: str | None = None) -> None:
        self._image = None
        if placeholder is not None:
            self._placeholder = placeholder
        self.update()

    def image_rect(self) -> QRect:
        """Where the image is drawn in widget coordinates (empty without an image)."""
        return fit_rect(self._image.size(), self.rect()) if self._image is not None else QRect()

    def to_image(self, point: QPointF) -> QPointF | None:
        """Widget coordinates -> image pixels (None outside the image)."""
        rect = self.image_rect()
        if self._image is None or rect.isEmpty() or not rect.contains(point.toPoint()):
            return None
        sx = self._image.width() / rect.width()
        sy = self._image.height() / rect.height()
        return QPointF((point.x() - rect.x()) * sx, (point.y() - rect.y()) * sy)

    def mousePressEvent(self, event: QMouseEvent) -> None:
        self.setFocus()
        if event.button() == Qt.MouseButton.LeftButton:
            where = self.to_image(event.position())
            if where is not None:
                self.clicked.emit(where)
        super().mousePressEvent(event)

    def paintEvent(self, event: QPaintEvent) -> None:
        painter = QPainter(self)
        try:
            painter.fillRect(self.rect(), QColor(0, 0, 0))
            if self._image is None:
                painter.setPen(QColor(170, 170, 170))
                painter.drawText(self.rect(), Qt.AlignmentFlag.AlignCenter | Qt.TextFlag.TextWordWrap,
                                 self._placeholder)
                return
            painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform)
            painter.drawImage(self.image_rect(), self._image)
        finally:
            painter.end()
