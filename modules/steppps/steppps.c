// SPDX-License-Identifier: GPL-2.0
/*
 * steppps: process lifecycle events for QuantumOS.
 *
 * Probes on the scheduler's sched_process_{fork,exec,exit} tracepoints
 * write fixed-size records (steppps_abi.h) into a ring per CPU. Readers of
 * /dev/steppps each keep their own position in every ring, so several
 * readers see every event. A writer never waits: it overwrites the oldest
 * record, and a reader that falls behind gets a LOST record saying how many
 * it missed (counted in /sys/kernel/steppps/drops).
 *
 * The tracepoints are found with for_each_kernel_tracepoint() because the
 * kernel does not export __tracepoint_sched_process_* to modules.
 */

#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/atomic.h>
#include <linux/cgroup.h>
#include <linux/cred.h>
#include <linux/fs.h>
#include <linux/irq_work.h>
#include <linux/kobject.h>
#include <linux/log2.h>
#include <linux/miscdevice.h>
#include <linux/module.h>
#include <linux/mm.h>
#include <linux/mutex.h>
#include <linux/percpu.h>
#include <linux/poll.h>
#include <linux/sched.h>
#include <linux/sched/signal.h>
#include <linux/slab.h>
#include <linux/spinlock.h>
#include <linux/string.h>
#include <linux/sysfs.h>
#include <linux/timekeeping.h>
#include <linux/tracepoint.h>
#include <linux/uaccess.h>
#include <linux/version.h>
#include <linux/wait.h>
#include <linux/binfmts.h>

#include "steppps_abi.h"

static_assert(sizeof(struct steppps_record) == STEPPPS_RECORD_SIZE);

static unsigned int buffer_records = 8192;
module_param(buffer_records, uint, 0444);
MODULE_PARM_DESC(buffer_records,
		 "Records per CPU ring, rounded up to a power of two (default 8192)");

struct steppps_ring {
	/* raw: taken from tracepoint probes, which run with preemption off */
	raw_spinlock_t lock;
	u64 head;		/* records ever written; the next seq */
	struct steppps_record *recs;
	struct irq_work wake;
};

static DEFINE_PER_CPU(struct steppps_ring, steppps_rings);
static unsigned int ring_size;	/* power of two */
static DECLARE_WAIT_QUEUE_HEAD(steppps_wait);

static atomic64_t stat_events[STEPPPS_EVENT_EXIT + 1];
static atomic64_t stat_drops;
static atomic_t stat_readers;

/* Readers sleep in read() or poll(); wake them outside the tracepoint. */
static void steppps_wake(struct irq_work *work)
{
	wake_up_interruptible(&steppps_wait);
}

static void steppps_emit(struct steppps_record *rec)
{
	struct steppps_ring *ring = this_cpu_ptr(&steppps_rings);
	unsigned long flags;

	rec->size = STEPPPS_RECORD_SIZE;
	rec->version = STEPPPS_ABI_VERSION;
	rec->cpu = smp_processor_id();
	rec->time_ns = ktime_get_ns();

	raw_spin_lock_irqsave(&ring->lock, flags);
	rec->seq = ring->head;
	ring->recs[ring->head & (ring_size - 1)] = *rec;
	ring->head++;
	raw_spin_unlock_irqrestore(&ring->lock, flags);

	atomic64_inc(&stat_events[rec->type]);
	if (wq_has_sleeper(&steppps_wait))
		irq_work_queue(&ring->wake);
}

/* Fills what every event knows about @p. Runs with preemption disabled. */
static void steppps_fill_task(struct steppps_record *rec,
			      struct task_struct *p)
{
	rec->pid = task_tgid_nr(p);
	rec->tid = task_pid_nr(p);
	rec->start_ns = p->start_time;
	if (!thread_group_leader(p))
		rec->flags |= STEPPPS_F_THREAD;
	get_task_comm(rec->comm, p);

	rcu_read_lock();
	rec->ppid = task_tgid_nr(rcu_dereference(p->real_parent));
	rec->uid = from_kuid_munged(&init_user_ns, task_uid(p));
#ifdef CONFIG_CGROUPS
	rec->cgroup_id = cgroup_id(task_dfl_cgroup(p));
#endif
	rcu_read_unlock();
}

static void steppps_probe_fork(void *data, struct task_struct *parent,
			       struct task_struct *child)
{
	struct steppps_record rec = { .type = STEPPPS_EVENT_FORK };

	steppps_fill_task(&rec, child);
	steppps_emit(&rec);
}

static void steppps_probe_exec(void *data, struct task_struct *p,
			       pid_t old_pid, struct linux_binprm *bprm)
{
	struct steppps_record rec = { .type = STEPPPS_EVENT_EXEC };

	steppps_fill_task(&rec, p);
	rec.exit_code = old_pid;
	if (strscpy(rec.filename, bprm->filename, sizeof(rec.filename)) < 0)
		rec.flags |= STEPPPS_F_TRUNCATED;
	steppps_emit(&rec);
}

#if LINUX_VERSION_CODE >= KERNEL_VERSION(6, 16, 0)
static void steppps_probe_exit(void *data, struct task_struct *p,
			       bool group_dead)
#else
static void steppps_probe_exit(void *data, struct task_struct *p)
#endif
{
	struct steppps_record rec = { .type = STEPPPS_EVENT_EXIT };

	steppps_fill_task(&rec, p);
	/* do_exit() set exit_code and dropped signal->live before the event */
	rec.exit_code = p->exit_code;
	if (!atomic_read(&p->signal->live))
		rec.flags |= STEPPPS_F_GROUP_DEAD;
	steppps_emit(&rec);
}

static struct steppps_probe {
	const char *name;
	void *func;
	struct tracepoint *tp;
} steppps_probes[] = {
	{ .name = "sched_process_fork", .func = steppps_probe_fork },
	{ .name = "sched_process_exec", .func = steppps_probe_exec },
	{ .name = "sched_process_exit", .func = steppps_probe_exit },
};

static void steppps_find_tracepoint(struct tracepoint *tp, void *priv)
{
	int i;

	for (i = 0; i < ARRAY_SIZE(steppps_probes); i++)
		if (!strcmp(tp->name, steppps_probes[i].name))
			steppps_probes[i].tp = tp;
}

/* A reader: its position in each CPU's ring. */
struct steppps_reader {
	struct mutex lock;	/* one read() at a time per open file */
	u64 *pos;		/* indexed by CPU */
	unsigned int next_cpu;	/* where the next read() starts: fairness */
	struct steppps_record *bounce;
};

#define STEPPPS_BOUNCE	32	/* records copied per lock hold */

static bool steppps_pending(struct steppps_reader *r)
{
	int cpu;

	for_each_possible_cpu(cpu)
		if (READ_ONCE(per_cpu(steppps_rings, cpu).head) != r->pos[cpu])
			return true;
	return false;
}

static int steppps_open(struct inode *inode, struct file *file)
{
	struct steppps_reader *r;
	int cpu;

	r = kzalloc(sizeof(*r), GFP_KERNEL);
	if (!r)
		return -ENOMEM;
	r->pos = kcalloc(nr_cpu_ids, sizeof(*r->pos), GFP_KERNEL);
	r->bounce = kcalloc(STEPPPS_BOUNCE, sizeof(*r->bounce), GFP_KERNEL);
	if (!r->pos || !r->bounce) {
		kfree(r->pos);
		kfree(r->bounce);
		kfree(r);
		return -ENOMEM;
	}
	mutex_init(&r->lock);
	/* A new reader sees what happens from now on. */
	for_each_possible_cpu(cpu)
		r->pos[cpu] = READ_ONCE(per_cpu(steppps_rings, cpu).head);
	file->private_data = r;
	atomic_inc(&stat_readers);
	return stream_open(inode, file);
}

static int steppps_release(struct inode *inode, struct file *file)
{
	struct steppps_reader *r = file->private_data;

	atomic_dec(&stat_readers);
	mutex_destroy(&r->lock);
	kfree(r->bounce);
	kfree(r->pos);
	kfree(r);
	return 0;
}

/*
 * Copies up to @max records of @cpu's ring into the reader's bounce buffer.
 * Records overwritten since the reader's position become one LOST record.
 */
static unsigned int steppps_take(struct steppps_reader *r, int cpu,
				 unsigned int max)
{
	struct steppps_ring *ring = &per_cpu(steppps_rings, cpu);
	unsigned int n = 0;
	unsigned long flags;
	u64 lost = 0;
	u64 from;

	raw_spin_lock_irqsave(&ring->lock, flags);
	if (ring->head - r->pos[cpu] > ring_size) {
		from = r->pos[cpu];
		lost = ring->head - ring_size - r->pos[cpu];
		r->pos[cpu] = ring->head - ring_size;
	}
	if (lost) {
		struct steppps_record *rec = &r->bounce[n++];

		memset(rec, 0, sizeof(*rec));
		rec->size = STEPPPS_RECORD_SIZE;
		rec->version = STEPPPS_ABI_VERSION;
		rec->type = STEPPPS_EVENT_LOST;
		rec->cpu = cpu;
		rec->seq = from;
		rec->time_ns = ktime_get_ns();
		rec->start_ns = lost;
	}
	while (n < max && r->pos[cpu] != ring->head) {
		r->bounce[n++] = ring->recs[r->pos[cpu] & (ring_size - 1)];
		r->pos[cpu]++;
	}
	raw_spin_unlock_irqrestore(&ring->lock, flags);

	if (lost)
		atomic64_add(lost, &stat_drops);
	return n;
}

static ssize_t steppps_read(struct file *file, char __user *buf,
			    size_t count, loff_t *ppos)
{
	struct steppps_reader *r = file->private_data;
	size_t want = count / STEPPPS_RECORD_SIZE;
	size_t done = 0;
	unsigned int i;
	int ret;

	if (!want)
		return -EINVAL;

	for (;;) {
		if (mutex_lock_interruptible(&r->lock))
			return -ERESTARTSYS;
		/* Visit every CPU once per call, starting where the last ended. */
		for (i = 0; i < nr_cpu_ids && done < want; i++) {
			int cpu = (r->next_cpu + i) % nr_cpu_ids;
			unsigned int n;

			if (!cpu_possible(cpu))
				continue;
			do {
				n = steppps_take(r, cpu, min_t(size_t, want - done,
							       STEPPPS_BOUNCE));
				if (n && copy_to_user(buf + done * STEPPPS_RECORD_SIZE,
						      r->bounce,
						      n * STEPPPS_RECORD_SIZE)) {
					mutex_unlock(&r->lock);
					return done ? done * STEPPPS_RECORD_SIZE
						    : -EFAULT;
				}
				done += n;
			} while (n && done < want);
		}
		r->next_cpu = (r->next_cpu + 1) % nr_cpu_ids;
		mutex_unlock(&r->lock);

		if (done)
			return done * STEPPPS_RECORD_SIZE;
		if (file->f_flags & O_NONBLOCK)
			return -EAGAIN;
		ret = wait_event_interruptible(steppps_wait,
					       steppps_pending(r));
		if (ret)
			return ret;
	}
}

static __poll_t steppps_poll(struct file *file, poll_table *wait)
{
	struct steppps_reader *r = file->private_data;

	poll_wait(file, &steppps_wait, wait);
	return steppps_pending(r) ? EPOLLIN | EPOLLRDNORM : 0;
}

static const struct file_operations steppps_fops = {
	.owner = THIS_MODULE,
	.open = steppps_open,
	.release = steppps_release,
	.read = steppps_read,
	.poll = steppps_poll,
};

static struct miscdevice steppps_dev = {
	.minor = MISC_DYNAMIC_MINOR,
	.name = "steppps",
	.fops = &steppps_fops,
	.mode = 0400,	/* what every process runs is not everyone's business */
};

static ssize_t events_show(struct kobject *kobj, struct kobj_attribute *attr,
			   char *buf)
{
	return sysfs_emit(buf, "%lld\n",
			  atomic64_read(&stat_events[STEPPPS_EVENT_FORK]) +
			  atomic64_read(&stat_events[STEPPPS_EVENT_EXEC]) +
			  atomic64_read(&stat_events[STEPPPS_EVENT_EXIT]));
}

static ssize_t forks_show(struct kobject *kobj, struct kobj_attribute *attr,
			  char *buf)
{
	return sysfs_emit(buf, "%lld\n",
			  atomic64_read(&stat_events[STEPPPS_EVENT_FORK]));
}

static ssize_t execs_show(struct kobject *kobj, struct kobj_attribute *attr,
			  char *buf)
{
	return sysfs_emit(buf, "%lld\n",
			  atomic64_read(&stat_events[STEPPPS_EVENT_EXEC]));
}

static ssize_t exits_show(struct kobject *kobj, struct kobj_attribute *attr,
			  char *buf)
{
	return sysfs_emit(buf, "%lld\n",
			  atomic64_read(&stat_events[STEPPPS_EVENT_EXIT]));
}

static ssize_t drops_show(struct kobject *kobj, struct kobj_attribute *attr,
			  char *buf)
{
	return sysfs_emit(buf, "%lld\n", atomic64_read(&stat_drops));
}

static ssize_t readers_show(struct kobject *kobj, struct kobj_attribute *attr,
			    char *buf)
{
	return sysfs_emit(buf, "%d\n", atomic_read(&stat_readers));
}

static ssize_t buffer_records_show(struct kobject *kobj,
				   struct kobj_attribute *attr, char *buf)
{
	return sysfs_emit(buf, "%u\n", ring_size);
}

static ssize_t buffer_bytes_show(struct kobject *kobj,
				 struct kobj_attribute *attr, char *buf)
{
	return sysfs_emit(buf, "%zu\n",
			  (size_t)ring_size * STEPPPS_RECORD_SIZE);
}

static ssize_t abi_version_show(struct kobject *kobj,
				struct kobj_attribute *attr, char *buf)
{
	return sysfs_emit(buf, "%d\n", STEPPPS_ABI_VERSION);
}

static struct kobj_attribute events_attr = __ATTR_RO(events);
static struct kobj_attribute forks_attr = __ATTR_RO(forks);
static struct kobj_attribute execs_attr = __ATTR_RO(execs);
static struct kobj_attribute exits_attr = __ATTR_RO(exits);
static struct kobj_attribute drops_attr = __ATTR_RO(drops);
static struct kobj_attribute readers_attr = __ATTR_RO(readers);
static struct kobj_attribute buffer_records_attr = __ATTR_RO(buffer_records);
static struct kobj_attribute buffer_bytes_attr = __ATTR_RO(buffer_bytes);
static struct kobj_attribute abi_version_attr = __ATTR_RO(abi_version);

static struct attribute *steppps_attrs[] = {
	&events_attr.attr,
	&forks_attr.attr,
	&execs_attr.attr,
	&exits_attr.attr,
	&drops_attr.attr,
	&readers_attr.attr,
	&buffer_records_attr.attr,
	&buffer_bytes_attr.attr,
	&abi_version_attr.attr,
	NULL,
};

static const struct attribute_group steppps_group = {
	.attrs = steppps_attrs,
};

static struct kobject *steppps_kobj;

static void steppps_free_rings(void)
{
	int cpu;

	for_each_possible_cpu(cpu) {
		struct steppps_ring *ring = &per_cpu(steppps_rings, cpu);

		irq_work_sync(&ring->wake);
		kvfree(ring->recs);
		ring->recs = NULL;
	}
}

static int steppps_alloc_rings(void)
{
	int cpu;

	ring_size = roundup_pow_of_two(clamp(buffer_records, 64U, 1U << 20));
	for_each_possible_cpu(cpu) {
		struct steppps_ring *ring = &per_cpu(steppps_rings, cpu);

		raw_spin_lock_init(&ring->lock);
		init_irq_work(&ring->wake, steppps_wake);
		ring->head = 0;
		ring->recs = kvcalloc_node(ring_size, sizeof(*ring->recs),
					   GFP_KERNEL, cpu_to_node(cpu));
		if (!ring->recs) {
			steppps_free_rings();
			return -ENOMEM;
		}
	}
	return 0;
}

static void steppps_unregister_probes(int count)
{
	int i;

	for (i = 0; i < count; i++)
		tracepoint_probe_unregister(steppps_probes[i].tp,
					    steppps_probes[i].func, NULL);
	/* No probe runs after this: the rings may go. */
	tracepoint_synchronize_unregister();
}

static int __init steppps_init(void)
{
	int i, ret;

	for_each_kernel_tracepoint(steppps_find_tracepoint, NULL);
	for (i = 0; i < ARRAY_SIZE(steppps_probes); i++) {
		if (!steppps_probes[i].tp) {
			pr_err("tracepoint %s not found\n",
			       steppps_probes[i].name);
			return -ENOENT;
		}
	}

	ret = steppps_alloc_rings();
	if (ret)
		return ret;

	steppps_kobj = kobject_create_and_add("steppps", kernel_kobj);
	if (!steppps_kobj) {
		ret = -ENOMEM;
		goto err_rings;
	}
	ret = sysfs_create_group(steppps_kobj, &steppps_group);
	if (ret)
		goto err_kobj;

	ret = misc_register(&steppps_dev);
	if (ret)
		goto err_kobj;

	for (i = 0; i < ARRAY_SIZE(steppps_probes); i++) {
		ret = tracepoint_probe_register(steppps_probes[i].tp,
						steppps_probes[i].func, NULL);
		if (ret) {
			pr_err("cannot probe %s: %d\n", steppps_probes[i].name,
			       ret);
			steppps_unregister_probes(i);
			goto err_misc;
		}
	}

	pr_info("ABI %d, %u records of %d bytes per CPU\n",
		STEPPPS_ABI_VERSION, ring_size, STEPPPS_RECORD_SIZE);
	return 0;

err_misc:
	misc_deregister(&steppps_dev);
err_kobj:
	kobject_put(steppps_kobj);
err_rings:
	steppps_free_rings();
	return ret;
}

static void __exit steppps_exit(void)
{
	steppps_unregister_probes(ARRAY_SIZE(steppps_probes));
	misc_deregister(&steppps_dev);
	kobject_put(steppps_kobj);
	steppps_free_rings();
}

module_init(steppps_init);
module_exit(steppps_exit);

MODULE_AUTHOR("QuantumOS");
MODULE_DESCRIPTION("Process lifecycle events (fork, exec, exit) for QuantumOS");
MODULE_LICENSE("GPL");
MODULE_VERSION("0.1.0");
