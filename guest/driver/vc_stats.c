// SPDX-License-Identifier: GPL-2.0
/*
 * Latency statistics: with stats=1 every CIOCCRYPT the device serves is
 * stamped at ioctl entry, before and after the kick, when it leaves the
 * used ring, when its submitter runs again and at ioctl return; the spans
 * are summed per device and read (any write resets them) from
 * /sys/bus/virtio/devices/virtioN/latency. Off, each ioctl pays one branch.
 */
#include <linux/device.h>
#include <linux/module.h>
#include <linux/sysfs.h>

#include "vlab_cryptodev.h"

bool vc_stats;
module_param_named(stats, vc_stats, bool, 0644);
MODULE_PARM_DESC(stats,
		 "Time the stages of each CIOCCRYPT into /sys/bus/virtio/devices/virtioN/latency (default 0)");

static const char * const vc_stage_names[VC_STAGES] = {
	"submit",	/* ENTRY -> KICK: copy-in, lookup, pin, add to ring */
	"kick",		/* KICK -> KICKED: the notify write */
	"device",	/* KICKED -> DONE: transport, backend, interrupt */
	"wakeup",	/* DONE -> WAKE: the submitter scheduled again */
	"return",	/* WAKE -> RET: status, IV, free, copy-out */
};

static void vc_stat_max(atomic64_t *max, s64 v)
{
	s64 cur = atomic64_read(max);

	while (v > cur && !atomic64_try_cmpxchg(max, &cur, v))
		;
}

/*
 * Adds one timed request. Stamps are taken on different CPUs (the
 * callback may run on another one): a stamp earlier than the one before
 * it counts as equal, so no span is negative.
 */
void vc_stats_account(struct vc_dev *dev, struct vc_lat *lat)
{
	struct vc_stats *st = &dev->stats;
	unsigned int i;

	for (i = 0; i < VC_STAGES; i++) {
		s64 d;

		if (lat->t[i + 1] < lat->t[i])
			lat->t[i + 1] = lat->t[i];
		d = lat->t[i + 1] - lat->t[i];
		atomic64_add(d, &st->sum[i]);
		vc_stat_max(&st->max[i], d);
	}
	if (lat->polled)
		atomic64_inc(&st->polled);
	atomic64_inc(&st->count);
}

static struct vc_dev *vc_stats_dev(struct device *d)
{
	return dev_to_virtio(d)->priv;
}

/*
 * "requests N", "polled N", then one "STAGE SUM_NS MAX_NS" line per stage.
 * Read while requests complete, the lines are not one snapshot.
 */
static ssize_t latency_show(struct device *d, struct device_attribute *attr,
			    char *buf)
{
	struct vc_dev *dev = vc_stats_dev(d);
	struct vc_stats *st;
	unsigned int i;
	int n;

	if (!dev)
		return -ENODEV;
	st = &dev->stats;
	n = sysfs_emit(buf, "requests %lld\npolled %lld\n",
		       (long long)atomic64_read(&st->count),
		       (long long)atomic64_read(&st->polled));
	for (i = 0; i < VC_STAGES; i++)
		n += sysfs_emit_at(buf, n, "%s %lld %lld\n", vc_stage_names[i],
				   (long long)atomic64_read(&st->sum[i]),
				   (long long)atomic64_read(&st->max[i]));
	return n;
}

/* Any write zeroes the statistics. */
static ssize_t latency_store(struct device *d, struct device_attribute *attr,
			     const char *buf, size_t len)
{
	struct vc_dev *dev = vc_stats_dev(d);
	struct vc_stats *st;
	unsigned int i;

	if (!dev)
		return -ENODEV;
	st = &dev->stats;
	atomic64_set(&st->count, 0);
	atomic64_set(&st->polled, 0);
	for (i = 0; i < VC_STAGES; i++) {
		atomic64_set(&st->sum[i], 0);
		atomic64_set(&st->max[i], 0);
	}
	return len;
}
/* 0600: the timings and count of every user's requests are a side channel. */
static DEVICE_ATTR_ADMIN_RW(latency);

static struct attribute *vc_dev_attrs[] = {
	&dev_attr_latency.attr,
	NULL,
};

static const struct attribute_group vc_dev_group = {
	.attrs = vc_dev_attrs,
};

const struct attribute_group *vc_dev_groups[] = {
	&vc_dev_group,
	NULL,
};
