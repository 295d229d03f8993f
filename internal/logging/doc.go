// Package logging holds the log field names, the per-request logger carried in a context, and the bridge
// that sends client-go's klog output into the same logrus logger, so stderr carries one format.
package logging
