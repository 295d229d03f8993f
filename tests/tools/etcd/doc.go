// Package etcd pins the etcd that the test rig builds; it holds no code of its own.
package etcd
