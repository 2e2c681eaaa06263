//! Rendering an askama page into the body of a response.

use askama::Template;
use ehrshare_app::AppError;

use crate::error::HttpError;

/// Renders a template, turning a rendering failure into an internal error.
pub(crate) fn render_template<T: Template>(template: &T) -> Result<String, HttpError> {
    template
        .render()
        .map_err(|e| HttpError(AppError::Internal(Box::new(e))))
}
