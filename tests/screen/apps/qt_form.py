"""A small real Qt6 window for the desktop tests: a button, a check box and a line edit.

Run with the project's Python: `python tests/screen/apps/qt_form.py`. The button writes
how often it was pressed into the label, so a test can see a click land.
"""

from __future__ import annotations

import sys

from PySide6.QtWidgets import (
    QApplication,
    QCheckBox,
    QLabel,
    QLineEdit,
    QPushButton,
    QVBoxLayout,
    QWidget,
)


def build_window() -> QWidget:
    window = QWidget()
    window.setWindowTitle("deskloop Qt form")
    layout = QVBoxLayout(window)
    status = QLabel("not pressed yet")
    button = QPushButton("Press me")
    presses = [0]

    def count_press() -> None:
        presses[0] += 1
        status.setText(f"pressed {presses[0]} times")

    button.clicked.connect(count_press)
    check = QCheckBox("Remember me")
    edit = QLineEdit()
    edit.setAccessibleName("Your name")
    edit.setPlaceholderText("type your name")
    for widget in (button, check, edit, status):
        layout.addWidget(widget)
    window.resize(420, 220)
    return window


def main() -> int:
    app = QApplication(sys.argv)
    app.setApplicationName("deskloop-qt-form")
    window = build_window()
    window.show()
    return app.exec()


if __name__ == "__main__":
    sys.exit(main())
