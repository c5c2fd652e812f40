"""Files and images: uploads, thumbnails, who may fetch them, and how their bytes are served."""
