//! A [`NotificationQueue`] for unit tests: it records every request handed
//! off, and refuses when told to.

use std::sync::Mutex;

use super::{HandOffError, NotificationQueue, NotificationRequest};

#[derive(Default)]
pub struct RecordingQueue {
    handed_off: Mutex<Vec<NotificationRequest>>,
    refuse: Mutex<Option<HandOffError>>,
}

impl RecordingQueue {
    pub fn handed_off(&self) -> Vec<NotificationRequest> {
        self.handed_off.lock().unwrap().clone()
    }

    /// Every later hand-off fails with `error`.
    pub fn refuse(&self, error: HandOffError) {
        *self.refuse.lock().unwrap() = Some(error);
    }
}

impl NotificationQueue for RecordingQueue {
    async fn enqueue(&self, request: &NotificationRequest) -> Result<(), HandOffError> {
        if let Some(error) = self.refuse.lock().unwrap().clone() {
            return Err(error);
        }
        self.handed_off.lock().unwrap().push(request.clone());
        Ok(())
    }
}
