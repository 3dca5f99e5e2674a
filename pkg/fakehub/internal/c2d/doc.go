// Package c2d is the cloud-to-device message queue of the fake hub: one FIFO queue per device
// (or module) identity, with IoT Hub's limits, message states, redelivery and feedback, as pure
// logic that the fake hub's MQTT wiring drives.
//
// # Life of a message
//
// Queue.Enqueue validates an iothub.C2DMessage against the hub's limits and queues it (state queued):
//
//   - at most 50 messages per identity (queued plus delivered-but-unacknowledged); the 51st is
//     refused with an *iothub.Error of code 403004 DeviceMaximumQueueDepthExceeded;
//   - at most 64 KB per message, counting the payload, the system property values and the
//     application property names and values; larger is refused with code 413001
//     MessageTooLarge;
//   - a time to live of 1 minute to 2 days (default 1 hour, Options.DefaultTTL); outside that
//     range, or a bad Ack value, is code 400004 ArgumentInvalid.
//
// The wiring takes messages for delivery with Dispatch (oldest first; expired messages are
// skipped and become expired), which also assigns each an MQTT packet ID and tags it with the
// connection's session, and publishes each on DeliveryTopic at QoS 1 (state delivered). (Take
// plus MarkDelivered do the same for a wiring that allocates packet IDs itself.) The device's
// PUBACK completes the message: Complete with the packet ID (state completed). A QoS 0 delivery
// completes when sent: CompleteMessage. If the connection closes before the PUBACK,
// RequeueSession (or Requeue, for every connection) puts the delivered messages back at the
// head of the queue, in order; the next Dispatch hands them out again with DeliveryCount+1.
// A connected device without a C2D subscription gets its messages rejected, as on the real hub:
// the wiring calls Reject or RejectPending. Purge drops all queued messages (state purged).
// A message whose ExpiryTime passes while queued becomes expired and is never delivered.
//
// Finished messages (completed, expired, rejected, purged) stay visible through State for a
// bounded history (Options.HistoryLimit). Outcomes produce feedback records (Feedback) the way
// the hub's feedback endpoint reports them, according to the message's Ack: positive and full
// ask for Success records, negative and full for Expired, Rejected and Purged records.
//
// Time and message IDs are injected (Options.Now, Options.NewID). The Queue is safe for
// concurrent use and starts no goroutines; expiry is evaluated whenever a queue is touched.
package c2d
