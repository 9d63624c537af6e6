//! Where a device's identity comes from ([`DeviceIdSource`]). The fleet's words themselves
//! (device ids, check-ins, events, push events, routes and limits) are the wire format shared
//! with the device, in the `update-protocol` crate.

/// Where device ids come from. The default, and the only one for production, is the client
/// certificate; without mutual TLS the device API then refuses every request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DeviceIdSource {
    /// The verified client certificate's subject common name (mutual TLS).
    #[default]
    ClientCertificate,
    /// TEST ONLY (`--insecure-device-ids`): the `device-id` the client claims in the request.
    /// Anyone can then speak for any device.
    InsecureRequestField,
}
